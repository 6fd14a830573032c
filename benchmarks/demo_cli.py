"""``ess demo``: run :func:`benchmarks.demo.plan_steps` through the ``ess`` command, skipping finished steps."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from envsim.cli import UserError, non_negative_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo", help="working folder (default ./demo)")
    p.add_argument("--full", action="store_true", help="the GPU-sized run: 30 houses x 1000 views at 128x128, 60 epochs, 3 seeds")
    p.add_argument("--houses", type=int, help="override the number of houses")
    p.add_argument("--views", type=int, help="override views per house")
    p.add_argument("--epochs", type=int, help="override training epochs")
    p.add_argument("--seeds", type=int, help="override training seeds per method")
    p.add_argument("--batch-size", type=int, help="override the training batch (a multiple of 8)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default 0)")
    p.add_argument("--device", default="auto", help="training/evaluation device (default auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from benchmarks.demo import FULL, QUICK, plan_steps
    from envsim.cli import main as ess

    overrides = {k: getattr(args, k) for k in ("houses", "views", "epochs", "seeds", "batch_size") if getattr(args, k) is not None}
    try:
        cfg = dataclasses.replace(FULL if args.full else QUICK, **overrides)
        steps = plan_steps(cfg, out=args.out, seed=args.seed, device=args.device, progress=not args.no_progress)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    for step in steps:
        if step.done:
            continue
        print(f"== {step.name}: ess {' '.join(step.argv)}", file=sys.stderr)
        code = ess(list(step.argv))
        if code != 0:
            raise UserError(f"step '{step.name}' failed (exit {code}); fix it and rerun `ess demo` to continue")
    return 0
