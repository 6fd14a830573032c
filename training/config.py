"""What ``ess train`` trains: the method and its settings, the data and the schedule, in one frozen config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from training.byol import Partners
from training.heads import AuxConfig, AuxHead
from training.resnet import ARCHS
from training.sarl import SARLConfig

_SARL = SARLConfig()


class TrainError(ValueError):
    """A training run that cannot start as asked."""


class TrainMethod(str, Enum):
    """The self-supervised method a run trains."""

    MOCO = "moco"  # MoCo-v2, instance discrimination
    ESS_MB = "ess-mb"  # MoCo-v2 with binary spatial positives (ESS, arXiv 2401.15120)
    ESS_MW = "ess-mw"  # ... with weighted spatial positives
    BYOL = "byol"  # BYOL (arXiv 2006.07733)
    SARL = "sarl"  # BYOL plus SAL, PPDA and RAM on intermediate maps (arXiv 2512.01908)

    @property
    def contrastive(self) -> bool:
        """A MoCo-v2 objective (moco, ess-mb, ess-mw)."""
        return self in (TrainMethod.MOCO, TrainMethod.ESS_MB, TrainMethod.ESS_MW)

    @property
    def bootstrap(self) -> bool:
        """A BYOL objective (byol, sarl)."""
        return self in (TrainMethod.BYOL, TrainMethod.SARL)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``ess train`` (MoCo-v2 defaults, Chen et al. 2020).

    Attributes:
        method: moco (instance discrimination), ess-mb (binary spatial positives), ess-mw (weighted), byol
            or sarl (strings are converted to :class:`TrainMethod`).
        arch: a backbone of :data:`training.resnet.ARCHS` (resnet18, resnet50, resnet18-cifar,
            resnet18-cifar-half, resnet18-cifar-quarter).
        epochs: passes over the dataset's views.
        schedule_epochs: length of the cosine learning-rate schedule in epochs; None = ``epochs``. Set it
            above ``epochs`` to train part of a schedule now and extend the run later with ``--resume``.
            BYOL's target decay follows the same horizon.
        batch_size: global batch (split over ranks under torchrun).
        lr: base learning rate; None = 0.03 * batch_size / 256.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        moco_m: key-encoder momentum m (moco, ess-mb, ess-mw).
        temperature: InfoNCE temperature T (moco, ess-mb, ess-mw).
        queue_size: K; None = 65536 scaled down to the dataset (a multiple of the batch, at most the
            number of views).
        dim: embedding dimension (MoCo's key width; BYOL's projection and prediction width, 256 in its paper).
        mlp_hidden: hidden width of the projection head (and of BYOL's predictor; 4096 in its paper).
        bn_splits: SplitBatchNorm splits (single-process stand-in for shuffle-BN or per-device BN); 1 = plain BN.
        image_size: crop size fed to the network; None = the dataset's image width.
        workers: DataLoader worker processes.
        seed: everything random derives from it.
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        checkpoint_every: also checkpoint every this many steps (0 = at epoch ends only).
        light_positives: the own key's (or BYOL's second) view is the same pose under another light
            (datasets rendered with ``--light-variants``), for every method.
        instance_positive: ESS methods keep the anchor's second augmentation as a positive and add the
            spatial partner as an extra key; False: the partner replaces it.
        log_every: steps between log lines.
        crop_min_scale: smallest random-resized-crop area fraction (MoCo-v2: 0.2).
        jitter_strength: multiplier of MoCo-v2's colour jitter (0.4, 0.4, 0.4, 0.1).
        blur: MoCo-v2's Gaussian blur (p = 0.5).
        byol_tau: BYOL's target decay at step 0, rising to 1 on a cosine (byol, sarl; the paper's 0.996).
        partners: BYOL's second view: ``self`` (a second crop of the anchor's image) or ``spatial`` (a crop of
            its ESS spatial partner); byol only (sarl's map losses need two crops of one image).
        lambda_sal: SARL's saliency alignment weight. **Ours** (100): the paper gives no values; each default
            weighs its term to about 4 % of BYOL's initial loss (:mod:`training.sarl`).
        lambda_ppda: SARL's patch-prototype distribution alignment weight. **Ours** (1).
        lambda_ram: SARL's region affinity matching weight. **Ours** (10).
        aux: auxiliary heads trained beside any method: ``sp``, ``pose``, ``depth-order``
            (:mod:`training.heads`).
        aux_weight: one weight per head of ``aux``, or one for all; empty = 1.0 each.
    """

    method: TrainMethod = TrainMethod.MOCO
    arch: str = "resnet18"
    epochs: int = 10
    schedule_epochs: int | None = None
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    moco_m: float = 0.999
    temperature: float = 0.2
    queue_size: int | None = None
    dim: int = 128
    mlp_hidden: int = 2048
    bn_splits: int = 8
    image_size: int | None = None
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 0
    light_positives: bool = False
    instance_positive: bool = True
    log_every: int = 10
    crop_min_scale: float = 0.2
    jitter_strength: float = 1.0
    blur: bool = True
    byol_tau: float = 0.996
    partners: Partners = Partners.SELF
    lambda_sal: float = _SARL.lambda_sal
    lambda_ppda: float = _SARL.lambda_ppda
    lambda_ram: float = _SARL.lambda_ram
    aux: tuple[AuxHead, ...] = ()
    aux_weight: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.crop_min_scale <= 1 or self.jitter_strength < 0:
            raise ValueError("--crop-min-scale must lie in (0, 1] and --jitter-strength be >= 0")
        try:
            object.__setattr__(self, "method", TrainMethod(self.method))
        except ValueError:
            raise ValueError(f"--method must be one of {', '.join(m.value for m in TrainMethod)}, got {self.method!r}") from None
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("--epochs must be >= 1 and --batch-size >= 2")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(f"--schedule-epochs {self.schedule_epochs} must be at least --epochs {self.epochs}")
        if self.arch not in ARCHS:
            raise ValueError(f"unknown --arch {self.arch!r}; choose one of {', '.join(sorted(ARCHS))}")
        if self.batch_size % self.bn_splits:
            raise ValueError(f"--batch-size {self.batch_size} must be a multiple of --bn-splits {self.bn_splits}")
        if not 0 <= self.moco_m < 1 or self.temperature <= 0:
            raise ValueError("--moco-m must lie in [0, 1) and --temperature be positive")
        if self.seed < 0 or self.workers < 0:
            raise ValueError("--seed and --workers must be >= 0")
        self._check_method_settings()
        if self.aux:
            heads = AuxConfig(heads=tuple(self.aux), weights=tuple(self.aux_weight) or (1.0,))
            object.__setattr__(self, "aux", heads.heads)
            object.__setattr__(self, "aux_weight", heads.weights)
        elif self.aux_weight:
            raise ValueError("--aux-weight needs --aux (the heads it weighs)")

    def _check_method_settings(self) -> None:
        """Refuse a method's setting given to another method (it would be silently ignored)."""
        try:
            object.__setattr__(self, "partners", Partners(self.partners))
        except ValueError:
            raise ValueError(f"--partners must be self or spatial, got {self.partners!r}") from None
        if not (math.isfinite(self.byol_tau) and 0 <= self.byol_tau <= 1):
            raise ValueError(f"--byol-tau must lie in [0, 1] (BYOL uses 0.996), got {self.byol_tau}")
        if self.byol_tau != 0.996 and not self.method.bootstrap:
            raise ValueError(f"--byol-tau applies to --method byol and sarl, not {self.method.value}")
        if self.partners is Partners.SPATIAL and self.method is not TrainMethod.BYOL:
            hint = ("SARL's map losses compare two crops of one image cell by cell" if self.method is TrainMethod.SARL
                    else "ess-mb and ess-mw use spatial partners by design")
            raise ValueError(f"--partners spatial applies to --method byol ({hint})")
        lambdas = {k: getattr(self, k) for k in ("lambda_sal", "lambda_ppda", "lambda_ram")}
        SARLConfig(**lambdas)  # validates the weights
        if self.method is not TrainMethod.SARL and lambdas != {k: getattr(_SARL, k) for k in lambdas}:
            raise ValueError(f"--lambda-sal, --lambda-ppda and --lambda-ram apply to --method sarl, not {self.method.value}")

    @property
    def horizon(self) -> int:
        """Epochs of the cosine learning-rate schedule."""
        return self.schedule_epochs or self.epochs

    @property
    def heads(self) -> AuxConfig | None:
        """The auxiliary heads' config, None without heads."""
        return AuxConfig(heads=self.aux, weights=self.aux_weight) if self.aux else None
