"""``ess bench-perf``: the performance suite (:mod:`benchmarks.perf.suite`), or with ``--table`` one
benchmark's own detailed table (CPU render sizes, pair building, GPU render); writes ``<name>.json`` +
``<name>.md`` into ``--out`` and prints the table."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from pathlib import Path

from ess.args import UserError, non_negative_int, positive_int

TABLES = ("render", "pairs", "gpu-render")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from benchmarks.perf.suite import SECTIONS

    p.add_argument("--quick", action="store_true", help="reduced sizes: about two minutes on 2 cores")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)})")
    p.add_argument("--out", default="benchmarks/results",
                   help="folder of perf.json + perf.md (or the table's JSON + Markdown) (default benchmarks/results)")
    p.add_argument("--merge", action="store_true",
                   help="keep the sections of OUT/perf.json that this run does not measure")
    p.add_argument("--allow-dirty", action="store_true",
                   help="measure code with uncommitted changes (refused otherwise; the table then says so)")
    p.add_argument("--readme", metavar="PATH",
                   help="rewrite the table between <!-- perf:begin --> and <!-- perf:end --> in PATH (README.md)")
    p.add_argument("--no-run", action="store_true",
                   help="measure nothing: regenerate OUT/perf.md and --readme from OUT/perf.json")
    g = p.add_argument_group("one benchmark's own table instead of the suite (--table)")
    g.add_argument("--table", choices=TABLES,
                   help="render: CPU render at each size (cpu_render.json); pairs: pair building up to 1M views "
                   "(pairs.json); gpu-render: raw cast vs render vs to shards on the GPU (gpu_render.json)")
    g.add_argument("--views", type=positive_int, help="render: views (default 512); gpu-render: 4096 on CUDA, else 64")
    g.add_argument("--sizes", type=positive_int, nargs="+",
                   help="image sides (render: 128 256; gpu-render: 128 256 on CUDA, else 32) or views (pairs: "
                   "10000 100000 1000000)")
    g.add_argument("--batch", type=positive_int, help="views per cast (render: 32; gpu-render: 1024 on CUDA, else 32)")
    g.add_argument("--repeats", type=positive_int, help="timed repeats (render: 3; gpu-render: 3 on CUDA, else 1)")
    g.add_argument("--views-per-scene", type=positive_int, default=10_000, help="pairs: views per house (default 10000)")
    g.add_argument("--brute-max", type=positive_int, default=10_000, help="pairs: largest N for the O(N^2) brute force")
    g.add_argument("--seed", type=non_negative_int, default=0, help="pairs: seed (default 0)")
    g.add_argument("--triangles-min", type=non_negative_int,
                   help="render / gpu-render: triangles of the scan-sized scene, at least (render: 500000, 0 = the small "
                   "house only; gpu-render: 1000000)")
    g.add_argument("--chunk-rays", type=positive_int, help="gpu-render: rays per cast-and-shade step")
    g.add_argument("--work-dir", help="gpu-render: folder on the disk to measure (default: a temporary folder)")


def _table(args: argparse.Namespace) -> tuple[str, dict, str]:
    """Measure one benchmark: (file stem, report, Markdown)."""
    if args.table == "render":
        from benchmarks.perf import render

        triangles = 500_000 if args.triangles_min is None else args.triangles_min
        report = render.measure(views=args.views or 512, sizes=args.sizes or [128, 256], triangles_min=triangles,
                                batch=args.batch or 32, repeats=args.repeats or 3)
        return "cpu_render", report, render.to_markdown(report)
    if args.table == "pairs":
        from benchmarks.perf import pairs

        sizes = sorted(args.sizes or [10_000, 100_000, 1_000_000])
        if min(sizes) < 2 or args.views_per_scene < 2:
            raise ValueError("--sizes and --views-per-scene must be at least 2")
        logging.getLogger("benchmarks").setLevel(logging.INFO)
        report = pairs.measure(sizes=sizes, views_per_scene=args.views_per_scene, brute_max=args.brute_max, seed=args.seed)
        return "pairs", report, pairs.to_markdown(report)
    import torch

    from benchmarks.perf import gpu_render

    cuda = torch.cuda.is_available()
    report = gpu_render.measure(
        views=args.views or (4096 if cuda else 64), sizes=args.sizes or ([128, 256] if cuda else [32]),
        repeats=args.repeats or (3 if cuda else 1), batch=args.batch or (1024 if cuda else 32),
        triangles_min=1_000_000 if args.triangles_min is None else args.triangles_min, out_dir=args.work_dir,
        chunk_rays=args.chunk_rays,
    )
    return "gpu_render", report, gpu_render.to_markdown(report)


def run(args: argparse.Namespace) -> int:
    """Exit status 1 when a suite section failed (a broken invariant included); bad input is a UserError."""
    from benchmarks.perf import suite

    try:
        if args.table:
            suite.check_clean(args.allow_dirty)
            started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            stem, report, markdown = _table(args)
            report["started"] = started
            markdown += "\n" + suite.table_provenance(report, f"ess bench-perf --table {args.table}")
            suite.write_results(args.out, stem, report, markdown)
            print(markdown, end="")
            return 0
        out = Path(args.out)
        if args.readme and not Path(args.readme).is_file():
            raise ValueError(f"--readme {args.readme}: no such file")
        if args.no_run:
            path = out / f"{suite.REPORT_NAME}.json"
            if not path.is_file():
                raise ValueError(f"--no-run needs {path}; run the suite first")
            report = json.loads(path.read_text())
            suite.write_results(out, suite.REPORT_NAME, report, suite.to_markdown(report))
        else:
            def progress(name: str) -> None:
                print(f"== {name}", file=sys.stderr, flush=True)

            report = suite.run_suite(quick=args.quick, out=out, only=args.only, merge=args.merge, progress=progress,
                                     allow_dirty=args.allow_dirty)
        print(suite.to_markdown(report), end="")
        if args.readme:
            suite.update_readme(args.readme, report)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    bad = suite.failures(report)
    for line in bad:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if bad else 0
