"""Command-line entry points of the performance benchmarks (``python -m benchmarks.render``,
``python -m benchmarks.pairs``): parse, measure, write ``<name>.json`` + ``<name>.md``, print the table."""

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
