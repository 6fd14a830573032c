"""The plan of ``ess demo``: the whole chain on procedural houses, ending with the ESS comparison table.

render -> pair -> train each method (default moco / ess-mb / ess-mw; any name ``ess train --method`` takes),
several seeds each -> bench each -> compare. The default
(:data:`QUICK`) is the CPU protocol: sized to finish in under 20 minutes on 2 cores, with what a CPU needs to
learn in that time (32x32 images, a quarter-width ResNet-18 with a CIFAR stem, mild augmentations, a
higher learning rate, more epochs), all recorded in each run's config. ``--full`` (:data:`FULL`) is sized for a GPU (the ESS
set-up at 128x128, ResNet-18, MoCo-v2's augmentations). Every stage resumes: rerun the same command after an
interruption and finished stages are kept.
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
        views_per_trajectory: steps of each walk (every fifth walk is held out for familiar evaluation).
        size: image side in pixels.
        epochs: training epochs per method.
        batch_size: training batch.
        seeds: training seeds per method (mean and spread over them).
        arch: backbone.
        lr: base learning rate (None: MoCo's 0.03 x batch / 256).
        moco_m: key-encoder momentum.
        mlp_hidden: projection head width.
        workers: data loader processes.
        mild_augment: milder augmentations and 2 BN splits for short CPU runs (crop area >= 0.6, half the
            colour jitter, no blur); the full run uses MoCo-v2's.
        methods: training methods, each passed to ``ess train --method`` (which refuses a name it does not
            know); distinct, non-empty, usable in a folder name.
        pretext_views: the bench's ``--pretext-views`` (most views per split in the SP and jigsaw probes;
            None: every view).
    """

    houses: int = 10
    views: int = 200
    views_per_trajectory: int = 20
    size: int = 32
    epochs: int = 20
    batch_size: int = 64
    seeds: int = 3
    arch: str = "resnet18-cifar-quarter"
    lr: float | None = 0.06
    moco_m: float = 0.99
    mlp_hidden: int = 512
    workers: int = 0
    mild_augment: bool = True
    methods: tuple[str, ...] = METHODS
    pretext_views: int | None = 150

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        if not self.methods:
            raise ValueError("--methods needs at least one training method (e.g. moco ess-mb ess-mw)")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"--methods names a method twice: {' '.join(self.methods)}; give each once")
        for m in self.methods:
            if not isinstance(m, str) or not m or m.startswith("-") or any(c in m for c in "/\\ \t") or m in (".", ".."):
                raise ValueError(f"method {m!r} cannot name a run folder; give names such as moco, ess-mb, byol")
        if self.pretext_views is not None and self.pretext_views < 1:
            raise ValueError(f"pretext_views must be None (every view) or >= 1, got {self.pretext_views}")


QUICK = DemoConfig()
FULL = DemoConfig(houses=30, views=1000, size=128, epochs=60, batch_size=256, seeds=3, arch="resnet18", lr=None,
                  mlp_hidden=2048, workers=8, mild_augment=False, pretext_views=2000)


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


def plan_steps(cfg: DemoConfig, *, out: str | Path, seed: int = 0, device: str = "auto", progress: bool = True,
               render: tuple[str, ...] = ()) -> list[Step]:
    """The demo's commands in order, each marked done when its output is already on disk.

    ``render`` holds extra ``ess render`` options (e.g. ``--backend mitsuba --batch 1024`` on a GPU machine
    without Open3D).

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
                        "--views-per-trajectory", str(cfg.views_per_trajectory), *render, *quiet), done=False),  # resumes
        Step("pair", ("pair", str(data), *quiet), done=(data / "pairs.h5").is_file()),
    ]
    mild = ("--crop-min-scale", "0.6", "--jitter-strength", "0.5", "--no-blur", "--bn-splits", "2") if cfg.mild_augment else ()
    lr = ("--lr", str(cfg.lr)) if cfg.lr is not None else ()
    runs = [out / "runs" / f"{method}-seed{s}" for method in cfg.methods for s in range(cfg.seeds)]
    for run_dir in runs:
        method, s = run_dir.name.rsplit("-seed", 1)
        resume = ("--resume",) if (run_dir / "checkpoint.pt").is_file() else ()
        steps.append(Step(
            f"train {method} seed {s}",
            ("train", str(data), "--method", method, "--out", str(run_dir), "--epochs", str(cfg.epochs),
             "--batch-size", str(cfg.batch_size), "--arch", cfg.arch, "--seed", s, "--workers", str(cfg.workers),
             "--device", device, "--moco-m", str(cfg.moco_m), "--mlp-hidden", str(cfg.mlp_hidden), *lr, *mild,
             *resume, *quiet),
            done=(run_dir / "encoder.pt").is_file(),
        ))
    pretext = ("--pretext-views", str(cfg.pretext_views or 0))
    for run_dir in runs:
        steps.append(Step(f"bench {run_dir.name}", ("bench", str(run_dir), "--data", str(data), "--device", device,
                                                    *pretext, *quiet),
                          done=(run_dir / "bench" / "bench.json").is_file()))
    steps.append(Step("compare", ("bench", "--compare", *map(str, runs), "--out", str(out / "comparison")), done=False))
    return steps
