"""``ess demo``: run :func:`benchmarks.evaluation.demo.plan_steps` through the ``ess`` command, skipping finished steps.

``--methods`` lists the training methods (default moco, ess-mb, ess-mw); each is passed to ``ess train
--method`` as it is, so a method works here as soon as ``ess train`` has it. Before anything runs, every
training step's arguments are parsed by ``ess train``'s own parser: a name it does not know is refused with
its message, before the dataset is rendered.

``<out>/demo.json`` records the command, the resolved demo config, the machine, the code version and the
wall time of every step (kept from earlier runs for steps that were already done), rewritten after each step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ess.args import UserError, non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo", help="working folder (default ./demo)")
    p.add_argument("--full", action="store_true", help="the GPU-sized run: 30 houses x 1000 views at 128x128, 60 epochs, 3 seeds")
    p.add_argument("--houses", type=int, help="override the number of houses")
    p.add_argument("--views", type=int, help="override views per house")
    p.add_argument("--epochs", type=int, help="override training epochs")
    p.add_argument("--seeds", type=int, help="override training seeds per method")
    p.add_argument("--batch-size", type=int, help="override the training batch (a multiple of the BN splits)")
    p.add_argument("--arch", help="override the backbone (e.g. resnet18)")
    p.add_argument("--methods", nargs="+", metavar="METHOD",
                   help="training methods to run, bench and compare (default: moco ess-mb ess-mw; any `ess train "
                   "--method` name, e.g. byol sarl)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default 0)")
    p.add_argument("--device", default="auto", help="training/evaluation device (default auto)")
    p.add_argument("--render-backend", choices=["open3d", "mitsuba", "auto"],
                   help="ess render --backend for the dataset (default: render's own, open3d; mitsuba renders on a "
                   "CUDA GPU and needs no Open3D)")
    p.add_argument("--render-batch", type=positive_int, help="ess render --batch (views per cast; e.g. 1024 on a GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--results", metavar="DIR",
                   help="at the end, copy the comparison, demo.json and every run's bench report into DIR "
                   "(e.g. benchmarks/results/ess_cpu; then `ess bench --results DIR --readme README.md`)")


def run(args: argparse.Namespace) -> int:
    from benchmarks.evaluation.demo import FULL, QUICK, plan_steps
    from benchmarks.machine import machine_info
    from envsim.provenance import write_json_atomic
    from envsim.version import code_version

    keys = ("houses", "views", "epochs", "seeds", "batch_size", "arch", "methods")
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    try:
        cfg = dataclasses.replace(FULL if args.full else QUICK, **overrides)
        render = (("--backend", args.render_backend) if args.render_backend else ()) + (
            ("--batch", str(args.render_batch)) if args.render_batch else ())
        steps = plan_steps(cfg, out=args.out, seed=args.seed, device=args.device, progress=not args.no_progress,
                           render=render)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    _check_train_arguments(steps)
    record_path = Path(args.out) / "demo.json"
    earlier = {}
    if record_path.is_file():
        try:
            earlier = {s["name"]: s for s in json.loads(record_path.read_text()).get("steps", [])}
        except (ValueError, KeyError, TypeError):
            earlier = {}
    record = {
        "format": "ess-demo/1", "command": ["ess", "demo", *getattr(args, "_sub_argv", [])], "config": dataclasses.asdict(cfg),
        "profile": "full" if args.full else "quick", "seed": args.seed, "device": args.device,
        "code_version": code_version(), "machine": machine_info(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "steps": [],
    }
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for step in steps:
        entry = {"name": step.name, "argv": list(step.argv), "seconds": None}
        if step.done:
            entry["seconds"] = (earlier.get(step.name) or {}).get("seconds")
            record["steps"].append(entry)
            continue
        print(f"== {step.name}: ess {' '.join(step.argv)}", file=sys.stderr)
        start = time.perf_counter()
        code = args._main(list(step.argv))
        entry["seconds"] = round(time.perf_counter() - start, 1)
        if code != 0:
            raise UserError(f"step '{step.name}' failed (exit {code}); fix it and rerun `ess demo` to continue")
        record["steps"].append(entry)
        write_json_atomic(record_path, record)
    record["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(record_path, record)
    if args.results:
        from benchmarks.evaluation.compare import copy_results

        for path in copy_results(args.out, args.results):
            print(path)
    return 0


def _check_train_arguments(steps) -> None:
    """Parse every training step's arguments with ``ess train``'s parser before anything runs.

    Raises:
        UserError: ``ess train`` refuses a step's arguments (e.g. a method it does not have), with its message.
    """
    from ess import train as train_cli

    parser = argparse.ArgumentParser(prog="ess train", exit_on_error=False)
    train_cli.add_arguments(parser)
    for step in steps:
        if step.argv[0] != "train":
            continue
        try:
            parser.parse_args(list(step.argv[1:]))
        except argparse.ArgumentError as exc:
            raise UserError(f"step '{step.name}': ess train refuses it: {exc}") from None
