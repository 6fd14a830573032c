"""``ess bench RUN --data DIR`` and ``ess bench RUN... --compare``: options and terminal around
:func:`benchmarks.evaluation.evaluate.evaluate_run` and :func:`benchmarks.evaluation.compare.compare_runs`.

- One run: evaluates it on ``--data`` (room classification, localization and, when the dataset has a
  ``pairs.h5``, the SP, jigsaw and relative-pose probes) and writes ``bench.json`` + ``bench.md`` into
  ``--out`` (default ``<run>/bench``); prints the Markdown summary.
- ``--results DIR --readme README.md``: rewrites the README's ESS section from a results folder
  (``comparison.json`` + ``demo.json``, e.g. ``benchmarks/results/ess_cpu`` from ``ess demo --results``).
- ``--compare``: reads each run's ``<run>/bench/bench.json``. With ``--data``, a run without a report, or
  whose report is stale (another checkpoint, dataset or bench settings), is evaluated first and its report
  written into ``<run>/bench`` (always there, so the next comparison finds it). The comparison goes to
  ``--out`` (default ``./comparison``): ``comparison.json``, ``comparison.md``, ``comparison.png``; the
  table is printed. Any training method may be compared (``moco``, ``ess-mb``, ``ess-mw`` come first, then
  the others by name, each against ``moco`` per seed).

Benchmarking on a dataset other than the one the run was trained on (e.g. another rendering of the same
scenes) is allowed: both manifest hashes are recorded and a warning is logged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ess.args import UserError, non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="training run folder(s) with encoder.pt (several with --compare)")
    p.add_argument("--data", help="dataset folder to evaluate on (required unless --compare finds every report)")
    p.add_argument("--compare", action="store_true",
                   help="compare the runs' bench reports: mean ± std per method over seeds")
    p.add_argument("--out", help="output folder (default: <run>/bench; with --compare ./comparison)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="bench seed: probe init, chance draws (default 0)")
    p.add_argument("--random-init-seed", type=non_negative_int,
                   help="seed of the random-init floor (default: the run's training seed, the network it started from)")
    p.add_argument("--knn-k", type=positive_int, default=20, help="k of the k-NN room classifier (default 20)")
    p.add_argument("--probe-epochs", type=positive_int, default=100,
                   help="most L-BFGS iterations of the linear probe (default 100)")
    p.add_argument("--image-size", type=positive_int,
                   help="side in pixels fed to the encoders (default: the run's training size)")
    p.add_argument("--pretext-views", type=non_negative_int, default=1000,
                   help="most views per split whose crops and jigsaw tiles the SP and jigsaw probes embed, a sample "
                   "drawn with --seed (default 1000; 0 = every view); each costs 11 encoder passes")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--results", metavar="DIR", help="a results folder (comparison.json + demo.json): print its section, "
                   "or with --readme write it into the README")
    p.add_argument("--readme", metavar="PATH", help="with --results: rewrite the README between <!-- SECTION:begin --> "
                   "and <!-- SECTION:end -->")
    p.add_argument("--section", default="ess-cpu", help="with --readme: the marker name (default ess-cpu)")


def _config(args: argparse.Namespace):
    import torch

    from benchmarks.evaluation.evaluate import BenchConfig

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return BenchConfig(knn_k=args.knn_k, probe_epochs=args.probe_epochs, seed=args.seed, batch_size=args.batch_size,
                           device=device, image_size=args.image_size, random_init_seed=args.random_init_seed,
                           pretext_views=args.pretext_views or None)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _check_run(run: str) -> Path:
    from training.encoder import ENCODER_NAME

    path = Path(run)
    if not (path / ENCODER_NAME).is_file():
        raise UserError(f"{run} is not a run folder (no {ENCODER_NAME}); train one with `ess train`")
    return path


def _check_data(data: str) -> str:
    from envsim.store.reader import DatasetReader

    try:
        DatasetReader(data)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return data


def _evaluate(run: Path, data: str, config, *, no_progress: bool) -> dict:
    from tqdm import tqdm

    from benchmarks.evaluation.evaluate import LeakageError, evaluate_run

    bar = tqdm(unit="view", desc=f"bench {run.name}", disable=no_progress, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        return evaluate_run(run, data, config=config, progress=progress)
    except (ValueError, FileNotFoundError, LeakageError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        bar.close()


def _fresh(report: dict, run: Path, data: str | None, config) -> bool:
    """Whether a stored report still describes this run's checkpoint, ``data`` and ``config``."""
    from benchmarks.evaluation.evaluate import DETERMINING_FIELDS
    from envsim.store.reader import DatasetReader
    from training.encoder import ENCODER_NAME

    if report["checkpoint"]["sha256"] != hashlib.sha256((run / ENCODER_NAME).read_bytes()).hexdigest():
        return False
    if data is not None and report["dataset"]["manifest_sha256"] != DatasetReader(data).manifest_sha256():
        return False
    wanted = asdict(config)
    return all(report["bench_config"].get(k) == wanted[k] for k in DETERMINING_FIELDS)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError(
            "benchmarking needs PyTorch: pip install 'torch==2.13.0' (or this package's [train] extra)"
        ) from None
    from benchmarks.evaluation.compare import compare_runs, comparison_markdown, write_comparison
    from benchmarks.evaluation.report import BENCH_DIR, REPORT_JSON, bench_markdown, read_report, write_report

    if args.results:
        return _readme(args)
    if not args.runs:
        raise UserError("give a run folder to evaluate (or several with --compare), or --results DIR")
    runs = [_check_run(r) for r in args.runs]
    data = _check_data(args.data) if args.data else None
    config = _config(args)
    if not args.compare:
        if len(runs) != 1:
            raise UserError(f"give one run to evaluate ({len(runs)} given), or add --compare to compare several")
        if data is None:
            raise UserError("--data DIR is required: the dataset to evaluate the run on")
        report = _evaluate(runs[0], data, config, no_progress=args.no_progress)
        json_path, _ = write_report(report, args.out)
        print(bench_markdown(report))
        print(f"report: {json_path}")
        return 0

    reports = []
    for path in runs:
        stored = path / BENCH_DIR / REPORT_JSON
        report = None
        if stored.is_file():
            try:
                report = read_report(stored)
            except (ValueError, json.JSONDecodeError) as exc:
                if data is None:
                    raise UserError(f"{stored}: {exc}") from exc
            if report is not None and data is not None and not _fresh(report, path, data, config):
                report = None
        if report is None:
            if data is None:
                raise UserError(f"{path} has no {BENCH_DIR}/{REPORT_JSON}; pass --data DIR to evaluate it first")
            report = _evaluate(path, data, config, no_progress=args.no_progress)
            write_report(report, path / BENCH_DIR)
        reports.append(report)
    try:
        comparison = compare_runs(reports)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    paths = write_comparison(comparison, args.out or "comparison")
    print(comparison_markdown(comparison))
    print(f"comparison: {paths[0].parent}")
    return 0


def _readme(args: argparse.Namespace) -> int:
    """``--results DIR [--readme PATH]``: the README section generated from a results folder."""
    from benchmarks.evaluation.compare import read_results, readme_block
    from benchmarks.readme import replace_section

    try:
        comparison, demo = read_results(args.results)
        block = readme_block(comparison, demo, str(args.results).rstrip("/"))
        if args.readme:
            replace_section(args.readme, args.section, block)
            print(f"{args.readme}: section {args.section} rewritten from {args.results}")
        else:
            print(block, end="")
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return 0
