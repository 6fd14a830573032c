"""``ess preview DIR``: options and output around :func:`envsim.job.preview.write_previews`."""

from __future__ import annotations

import argparse

from ess.args import UserError, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a rendered dataset folder")
    p.add_argument("--out", help="where to write the PNGs (default FOLDER/preview)")
    p.add_argument("--count", type=positive_int, default=24, help="views on the contact sheet (default 24)")
    p.add_argument("--seed", type=int, default=0, help="which views to pick (default 0)")
    p.add_argument("--pairs", action="store_true", help="also draw example positives and negatives from pairs.h5 (pairs.png)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from envsim.job.preview import write_previews
    from pairing.report import pairs_sheet
    from pairing.store import PAIRS_NAME

    if args.pairs and not (Path(args.folder) / PAIRS_NAME).is_file():
        raise UserError(f"no {PAIRS_NAME} in {args.folder}; run `ess pair {args.folder}` first")
    try:
        written = write_previews(args.folder, args.out, count=args.count, seed=args.seed)
        if args.pairs:
            out = Path(args.out) if args.out else Path(args.folder) / "preview"
            written.append(pairs_sheet(args.folder, out / "pairs.png", count=min(args.count, 12), seed=args.seed))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    for path in written:
        print(path)
    return 0
