"""Command-line entry points of the performance benchmarks (``python -m benchmarks.render``,
``python -m benchmarks.pairs``, and the whole suite: ``python -m benchmarks.perf`` / ``ess bench-perf``):
parse, measure, write ``<name>.json`` + ``<name>.md``, print the table."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any


def write_results(out: str | Path, stem: str, report: dict[str, Any], markdown: str) -> None:
    """Write a benchmark's JSON report and Markdown table into ``out`` and print the table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    print(markdown, end="")


def render_main(argv: list[str] | None = None) -> int:
    from benchmarks import render

    p = argparse.ArgumentParser(prog="python -m benchmarks.render", description=render.__doc__.split("\n\n")[0])
    p.add_argument("--views", type=int, default=512)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dense", action="store_true", help="subdivide the house to ~16x the triangles")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    report = render.measure(views=args.views, sizes=args.sizes, dense=args.dense, batch=args.batch, repeats=args.repeats)
    write_results(args.out, "cpu_render_dense" if args.dense else "cpu_render", report, render.to_markdown(report))
    return 0


def pairs_main(argv: list[str] | None = None) -> int:
    from benchmarks import pairs

    p = argparse.ArgumentParser(prog="python -m benchmarks.pairs", description=pairs.__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--views-per-scene", type=int, default=10_000)
    p.add_argument("--brute-max", type=int, default=10_000, help="largest N for the O(N^2) brute force")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if min(args.sizes) < 2 or args.views_per_scene < 2:
        p.error("--sizes and --views-per-scene must be at least 2")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = pairs.measure(
        sizes=sorted(args.sizes), views_per_scene=args.views_per_scene, brute_max=args.brute_max, seed=args.seed
    )
    write_results(args.out, "pairs", report, pairs.to_markdown(report))
    return 0


def add_perf_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the performance suite (``python -m benchmarks.perf`` and ``ess bench-perf``)."""
    from benchmarks.perf import SECTIONS

    p.add_argument("--quick", action="store_true", help="reduced sizes: about two minutes on 2 cores")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                   help=f"run only these sections ({', '.join(SECTIONS)})")
    p.add_argument("--out", default="benchmarks/results",
                   help="folder of perf.json + perf.md (default benchmarks/results)")
    p.add_argument("--merge", action="store_true",
                   help="keep the sections of OUT/perf.json that this run does not measure")
    p.add_argument("--readme", metavar="PATH",
                   help="rewrite the table between <!-- perf:begin --> and <!-- perf:end --> in PATH (README.md)")
    p.add_argument("--no-run", action="store_true",
                   help="measure nothing: regenerate OUT/perf.md and --readme from OUT/perf.json")


def run_perf(args: argparse.Namespace) -> int:
    """Run the suite as ``args`` say; exit status 1 when a section failed (a broken invariant included).

    Raises:
        ValueError: bad input (unknown section, no perf.json for --no-run, README without markers).
    """
    import sys

    from benchmarks import perf

    out = Path(args.out)
    if args.no_run:
        path = out / f"{perf.REPORT_NAME}.json"
        if not path.is_file():
            raise ValueError(f"--no-run needs {path}; run the suite first")
        report = json.loads(path.read_text())
        write_results(out, perf.REPORT_NAME, report, perf.to_markdown(report))
    else:
        if args.readme and not Path(args.readme).is_file():
            raise ValueError(f"--readme {args.readme}: no such file")

        def progress(name: str) -> None:
            print(f"== {name}", file=sys.stderr, flush=True)

        report = perf.run_suite(quick=args.quick, out=out, only=args.only, merge=args.merge, progress=progress)
    if args.readme:
        perf.update_readme(args.readme, report)
    bad = perf.failures(report)
    for line in bad:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if bad else 0


def perf_main(argv: list[str] | None = None) -> int:
    from benchmarks import perf

    p = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=perf.__doc__.split("\n\n")[0])
    add_perf_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_perf(args)
    except ValueError as exc:
        p.error(str(exc))


def perf_command(args: argparse.Namespace) -> int:
    """``ess bench-perf``: :func:`run_perf` with bad input reported as a one-line error."""
    from envsim.cli import UserError

    try:
        return run_perf(args)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
