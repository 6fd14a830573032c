"""The ``ess`` command: one console entry point with a subcommand per job.

Each subcommand's options are declared next to the code it drives; this module only parses, turns
user mistakes into one-line errors (exit status 2) and owns the terminal (progress bars, summaries).
What the system refuses (an ``OSError``: a full disk, a read-only or missing folder, permission denied)
is reported the same way, in one line with exit status 2 (``-v`` adds the traceback); any other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable, Sequence

from envsim.version import code_version
from ess.args import UserError

log = logging.getLogger("ess")


def _subcommands() -> list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]]:
    from ess import bench as bench_cli
    from ess import demo as demo_cmd
    from ess import inspect as inspect_cmd
    from ess import pair as pair_cli
    from ess import perf as perf_cli
    from ess import preview as preview_cmd
    from ess import qa as qa_cli
    from ess import render as render_cli
    from ess import train as train_cli
    from ess import verify as verify_cmd

    return [
        ("render", "render an RGB-D dataset with poses from scenes", render_cli.add_arguments, render_cli.run),
        ("pair", "build spatial positive pairs and pretext labels for a dataset", pair_cli.add_arguments, pair_cli.run),
        ("train", "train MoCo-v2 / ESS-MB / ESS-MW / BYOL / SARL (+ auxiliary heads) on a dataset with pairs", train_cli.add_arguments, train_cli.run),
        ("bench", "evaluate a run: room classification, localization, pretext probes (or --compare runs)", bench_cli.add_arguments, bench_cli.run),
        ("bench-perf", "run the performance suite (ratios to same-run references) and write JSON + Markdown", perf_cli.add_arguments, perf_cli.run),
        ("demo", "render, pair, train each --methods (default moco / ess-mb / ess-mw) over 3 seeds, bench and compare", demo_cmd.add_arguments, demo_cmd.run),
        ("inspect", "summarise a dataset, shard or scene file", inspect_cmd.add_arguments, inspect_cmd.run),
        ("verify", "check every shard of a dataset against its manifest", verify_cmd.add_arguments, verify_cmd.run),
        ("preview", "draw contact sheets and top-down trajectory maps (PNG)", preview_cmd.add_arguments, preview_cmd.run),
        ("qa", "export the five Spatial-SSRL spatial QA tasks of a dataset for vision-language models", qa_cli.add_arguments, qa_cli.run),
        ("qa-score", "score model responses to a QA export: accuracy and mean reward per task", qa_cli.add_score_arguments, qa_cli.run_score),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ess",
        description="Spatially-aware self-supervised learning toolkit: render RGB-D datasets with exact "
        "camera poses from indoor scenes, build spatial pairs, train and benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"ess {code_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each step does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text, add_arguments, run in _subcommands():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ess`` with ``argv`` (defaults to ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._sub_argv = argv[argv.index(args.command) + 1 :]  # for subcommands that re-parse (recipes)
    args._main = main  # for subcommands that run others (demo)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"ess {args.command}: interrupted; run the same command again to finish", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"ess {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log.info("traceback of the error below", exc_info=True)
        print(f"ess {args.command}: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: what the system refused and on which file."""
    lines = (exc.strerror or str(exc)).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    if names and not any(n in text for n in names):
        text = f"{text}: {' -> '.join(names)}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and "disk full" not in text:
        text = f"disk full ({text}); free space and rerun"
    return text


if __name__ == "__main__":  # `python -m ess.main` (`python -m ess` runs ess/__main__.py)
    sys.exit(main())
