"""``ess demo``: the whole chain on procedural houses, ending with the ESS comparison table.

render -> pair -> train moco / ess-mb / ess-mw -> bench each -> compare. The default is sized for a
laptop CPU (minutes); ``--full`` is sized for a GPU (the ESS set-up at 128x128, several seeds).
Every stage resumes: rerun the same command after an interruption and finished stages are kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from envsim.cli import UserError, non_negative_int

log = logging.getLogger(__name__)

METHODS = ("moco", "ess-mb", "ess-mw")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo.

    Attributes:
        houses: procedural houses (the last 20% are held out as unfamiliar scenes).
        views: views per house.
        size: image side in pixels.
        epochs: training epochs per method.
        batch_size: training batch.
        seeds: training seeds per method (mean and spread over them).
        arch: backbone.
        workers: data loader processes.
        mild_augment: milder augmentations and 2 BN splits for short CPU runs (crop area >= 0.6, half the
            colour jitter, no blur); the full run uses MoCo-v2's.
    """

    houses: int = 8
    views: int = 250
    size: int = 64
    epochs: int = 4
    batch_size: int = 64
    seeds: int = 1
    arch: str = "resnet18"
    workers: int = 2
    mild_augment: bool = True


QUICK = DemoConfig()
FULL = DemoConfig(houses=30, views=1000, size=128, epochs=60, batch_size=256, seeds=3, workers=8, mild_augment=False)


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
    import dataclasses

    from envsim.cli import main as ess

    cfg = FULL if args.full else QUICK
    overrides = {k: getattr(args, k) for k in ("houses", "views", "epochs", "seeds", "batch_size") if getattr(args, k) is not None}
    try:
        cfg = dataclasses.replace(cfg, **overrides)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    if cfg.houses < 2:
        raise UserError("the demo needs at least 2 houses (one is held out as an unfamiliar scene)")
    out = Path(args.out)
    data = out / "data"
    quiet = ["--no-progress"] if args.no_progress else []
    steps = [
        ("render", ["render", f"procedural:{cfg.houses}", "--out", str(data), "--views", str(cfg.views),
                    "--size", f"{cfg.size}x{cfg.size}", "--seed", str(args.seed), "--pitch-jitter", "3",
                    "--views-per-trajectory", "25", *quiet]),
        ("pair", ["pair", str(data), *quiet]),
    ]
    runs = []
    for method in METHODS:
        for seed in range(cfg.seeds):
            run_dir = out / "runs" / f"{method}-seed{seed}"
            runs.append(run_dir)
            train = ["train", str(data), "--method", method, "--out", str(run_dir), "--epochs", str(cfg.epochs),
                     "--batch-size", str(cfg.batch_size), "--arch", cfg.arch, "--seed", str(seed),
                     "--workers", str(cfg.workers), "--device", args.device, "--moco-m", "0.99", *quiet]
            if cfg.mild_augment:
                train += ["--crop-min-scale", "0.6", "--jitter-strength", "0.5", "--no-blur", "--bn-splits", "2"]
            if (run_dir / "encoder.pt").is_file():
                continue  # finished earlier
            if (run_dir / "checkpoint.pt").is_file():
                train.append("--resume")
            steps.append((f"train {method} seed {seed}", train))
    for run_dir in runs:
        steps.append((f"bench {run_dir.name}", ["bench", str(run_dir), "--data", str(data), "--device", args.device, *quiet]))
    steps.append(("compare", ["bench", "--compare", *map(str, runs), "--out", str(out / "comparison")]))
    for name, argv in steps:
        if name == "pair" and (data / "pairs.h5").is_file():
            continue
        if name.startswith("bench ") and (Path(argv[1]) / "bench" / "bench.json").is_file():
            continue
        print(f"== {name}: ess {' '.join(argv)}", file=sys.stderr)
        code = ess(argv)
        if code != 0:
            raise UserError(f"step '{name}' failed (exit {code}); fix it and rerun `ess demo` to continue")
    return 0
