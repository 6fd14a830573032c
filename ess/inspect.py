"""``ess inspect PATH``: options and output around :mod:`envsim.job.inspect`."""

from __future__ import annotations

import argparse
import json

from ess.args import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset folder, shard-*.h5, scene file (.glb .gltf .ply .obj), Habitat .navmesh, scene dataset (config or folder) or nav/*.npz")
    p.add_argument("--up", choices=["y", "z"], default="y", help="up axis when PATH is a mesh (default y)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from envsim.job.inspect import format_summary, summarise
    from pairing.report import format_pairs_summary, summarise_pairs

    try:
        summary = summarise(args.path, up=args.up)
        pairs = summarise_pairs(args.path) if "planned_views" in summary else None  # a dataset folder
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot read {args.path}: {exc}") from exc
    if pairs:
        summary["pairs"] = pairs
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join([format_summary(summary), *(format_pairs_summary(pairs) if pairs else [])]))
    return 0
