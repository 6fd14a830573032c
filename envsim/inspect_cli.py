"""``ess inspect PATH``: options and output around :mod:`envsim.inspect`."""

from __future__ import annotations

import argparse
import json

from envsim.cli import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset folder, shard-*.h5, scene file (.glb .gltf .ply .obj), Habitat .navmesh, scene dataset (config or folder) or nav/*.npz")
    p.add_argument("--up", choices=["y", "z"], default="y", help="up axis when PATH is a mesh (default y)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from envsim.inspect import format_summary, summarise

    try:
        summary = summarise(args.path, up=args.up)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot read {args.path}: {exc}") from exc
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
