"""``ess verify DIR``: exit 0 when every shard matches the manifest, else 1 naming each bad shard."""

from __future__ import annotations

import argparse

from ess.args import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a dataset folder written by `ess render`")


def run(args: argparse.Namespace) -> int:
    from envsim.store.verify import verify_dataset

    try:
        bad = verify_dataset(args.folder)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if not bad:
        print(f"{args.folder}: every shard matches the manifest")
        return 0
    for name, problems in bad.items():
        for problem in problems:
            print(f"{name or args.folder}: {problem}")
    return 1
