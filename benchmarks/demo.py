"""The plan of ``ess demo``: the whole chain on procedural houses, ending with the ESS comparison table.

render -> pair -> train moco / ess-mb / ess-mw -> bench each -> compare. The default is sized for a
laptop CPU (minutes); ``--full`` is sized for a GPU (the ESS set-up at 128x128, several seeds).
Every stage resumes: rerun the same command after an interruption and finished stages are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Step:
    """One ``ess`` command of the demo.

    Attributes:
        name: what the step does.
        argv: the ``ess`` arguments.
        done: the step's output exists from an earlier run (it is skipped).
    """

    name: str
    argv: tuple[str, ...]
    done: bool


def plan_steps(cfg: DemoConfig, *, out: str | Path, seed: int = 0, device: str = "auto", progress: bool = True) -> list[Step]:
    """The demo's commands in order, each marked done when its output is already on disk.

    Raises:
        ValueError: fewer than 2 houses (one is held out as an unfamiliar scene).
    """
    if cfg.houses < 2:
        raise ValueError("the demo needs at least 2 houses (one is held out as an unfamiliar scene)")
    out = Path(out)
    data = out / "data"
    quiet = () if progress else ("--no-progress",)
    steps = [
        Step("render", ("render", f"procedural:{cfg.houses}", "--out", str(data), "--views", str(cfg.views),
                        "--size", f"{cfg.size}x{cfg.size}", "--seed", str(seed), "--pitch-jitter", "3",
                        "--views-per-trajectory", "25", *quiet), done=False),  # render resumes by itself
        Step("pair", ("pair", str(data), *quiet), done=(data / "pairs.h5").is_file()),
    ]
    mild = ("--crop-min-scale", "0.6", "--jitter-strength", "0.5", "--no-blur", "--bn-splits", "2") if cfg.mild_augment else ()
    runs = [out / "runs" / f"{method}-seed{s}" for method in METHODS for s in range(cfg.seeds)]
    for run_dir in runs:
        method, s = run_dir.name.rsplit("-seed", 1)
        resume = ("--resume",) if (run_dir / "checkpoint.pt").is_file() else ()
        steps.append(Step(
            f"train {method} seed {s}",
            ("train", str(data), "--method", method, "--out", str(run_dir), "--epochs", str(cfg.epochs),
             "--batch-size", str(cfg.batch_size), "--arch", cfg.arch, "--seed", s, "--workers", str(cfg.workers),
             "--device", device, "--moco-m", "0.99", *mild, *resume, *quiet),
            done=(run_dir / "encoder.pt").is_file(),
        ))
    for run_dir in runs:
        steps.append(Step(f"bench {run_dir.name}", ("bench", str(run_dir), "--data", str(data), "--device", device, *quiet),
                          done=(run_dir / "bench" / "bench.json").is_file()))
    steps.append(Step("compare", ("bench", "--compare", *map(str, runs), "--out", str(out / "comparison")), done=False))
    return steps
