"""``ess preview DIR``: options and output around :func:`envsim.preview.write_previews`."""

from __future__ import annotations

import argparse

from envsim.cli import UserError, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a rendered dataset folder")
    p.add_argument("--out", help="where to write the PNGs (default FOLDER/preview)")
    p.add_argument("--count", type=positive_int, default=24, help="views on the contact sheet (default 24)")
    p.add_argument("--seed", type=int, default=0, help="which views to pick (default 0)")
    p.add_argument("--pairs", action="store_true", help="also draw example positives and negatives from pairs.h5 (pairs.png)")


def run(args: argparse.Namespace) -> int:
    from envsim.preview import write_previews

    try:
        written = write_previews(args.folder, args.out, count=args.count, seed=args.seed, pairs=args.pairs)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    for path in written:
        print(path)
    return 0
