"""ResNet backbones (ResNet-18/50, and CPU-sized variants), and the split BatchNorm that stands in for
MoCo's shuffle-BN.

Reference: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.

Architectures (:data:`ARCHS`):

* ``resnet18``, ``resnet50``: torchvision's networks (7x7 stride-2 stem + max-pool, widths 64..512).
* ``resnet18-cifar``: ResNet-18 with the CIFAR stem of the ResNet paper's section 4.2 and of the MoCo CIFAR
  demo (one 3x3 stride-1 convolution, no max-pool): small images (32-64 px) keep their resolution into
  ``layer1``.
* ``resnet18-cifar-half``, ``resnet18-cifar-quarter``: the same at half width (32..256 channels, 256
  features, about a quarter of the FLOPs) or a quarter (16..128 channels, 128 features, a sixteenth):
  CPU-sized encoders.

The layers carry torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``,
...), so a state dict reads like torchvision's; the classifier ``fc`` is left out: ``forward`` returns the
globally average-pooled features ``(N, out_dim)``, the input of a projection head or a linear probe, and
``forward_maps`` the same features with the ``layer2``-``layer4`` feature maps (for losses on intermediate maps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]
MAP_LAYERS = ("layer2", "layer3", "layer4")
"""The stages whose feature maps :meth:`ResNet.forward_maps` returns, shallow to deep."""


class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from ``num_splits`` sub-batches, one per split.

    A single-process substitute for MoCo's shuffle-BN (as in the official MoCo CIFAR demo): each split
    plays the part of one GPU's batch. Split ``s`` holds samples ``s, s + S, s + 2S, ...`` (S =
    ``num_splits``), the layout that lets one fused ``batch_norm`` call normalise all splits at once; shuffle
    a batch before the layer to make the splits random. In evaluation the running statistics are used as
    in plain BatchNorm; in training they are updated with the average over the splits of each split's
    statistics.

    Args:
        num_features: channels C.
        num_splits: S >= 1; the batch size must be a multiple of S in training.
        **kwargs: passed to :class:`torch.nn.BatchNorm2d` (``eps``, ``momentum``, ...).
    """

    def __init__(self, num_features: int, num_splits: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if num_splits < 1:
            raise ValueError(f"num_splits must be >= 1 (1 is plain BatchNorm), got {num_splits}")
        self.num_splits = num_splits

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training or not self.track_running_stats) or self.num_splits == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        s = self.num_splits
        if n % s:
            raise ValueError(
                f"batch size {n} is not divisible by num_splits={s}; use a batch size that is a multiple of {s}"
            )
        mean = self.running_mean.repeat(s) if self.running_mean is not None else None  # (S*C,)
        var = self.running_var.repeat(s) if self.running_var is not None else None  # (S*C,)
        weight = self.weight.repeat(s) if self.weight is not None else None  # (S*C,)
        bias = self.bias.repeat(s) if self.bias is not None else None  # (S*C,)
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as in nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        out = F.batch_norm(
            x.reshape(n // s, s * c, h, w), mean, var, weight, bias, True, momentum, self.eps
        )  # (N/S, S*C, H, W)
        if self.track_running_stats and self.training:
            with torch.no_grad():
                self.running_mean.copy_(mean.view(s, c).mean(0))  # (C,)
                self.running_var.copy_(var.view(s, c).mean(0))  # (C,)
        return out.view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_splits={self.num_splits}"


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut; ResNet-18/34."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None, norm: NormLayer) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = norm(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (N, C', H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (N, C', H', W')
        out = self.bn2(self.conv2(out))  # (N, C', H', W')
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride, as torchvision's "ResNet v1.5"), 1x1 expand by 4; ResNet-50."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int, downsample: nn.Module | None, norm: NormLayer) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = norm(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = norm(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = norm(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (N, 4C', H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (N, C', H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, C', H', W')
        out = self.bn3(self.conv3(out))  # (N, 4C', H', W')
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet without its classifier: images (N, 3, H, W) -> pooled features (N, out_dim).

    Attributes:
        out_dim: feature width (512 for ResNet-18, 2048 for ResNet-50).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        norm_layer: NormLayer,
        zero_init_residual: bool,
        generator: torch.Generator | None,
        width: int = 64,
        cifar_stem: bool = False,
    ) -> None:
        super().__init__()
        self._norm = norm_layer
        self.inplanes = width
        if cifar_stem:  # 3x3 stride 1, no max-pool: (N, w, H, W)
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:  # 7x7 stride 2 + 3x3 max-pool stride 2: (N, w, H/4, W/4)
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = 8 * width * block.expansion
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            elif isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
        if zero_init_residual:  # each residual branch starts as zero: every block begins as the identity
            for mod in self.modules():
                if isinstance(mod, Bottleneck) and mod.bn3.weight is not None:
                    nn.init.zeros_(mod.bn3.weight)
                elif isinstance(mod, BasicBlock) and mod.bn2.weight is not None:
                    nn.init.zeros_(mod.bn2.weight)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], width: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != width * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, width * block.expansion, stride), self._norm(width * block.expansion)
            )
        layers = [block(self.inplanes, width, stride, downsample, self._norm)]
        self.inplanes = width * block.expansion
        layers += [block(self.inplanes, width, 1, None, self._norm) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, w, H/r, W/r), r = 4 (1 with the CIFAR stem)
        x = self.layer1(x)  # (N, w e, H/r, W/r), e = block expansion
        x = self.layer2(x)  # (N, 2w e, H/2r, W/2r)
        x = self.layer3(x)  # (N, 4w e, H/4r, W/4r)
        x = self.layer4(x)  # (N, 8w e, H/8r, W/8r)
        return torch.flatten(self.avgpool(x), 1)  # (N, out_dim)

    def forward_maps(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The pooled features of :meth:`forward` (the same operations, so the same values) and the feature
        maps they come from.

        Args:
            x: (N, 3, H, W) normalised images.

        Returns:
            pooled (N, out_dim) and ``{"layer2": (N, 2w e, H/2r, W/2r), "layer3": (N, 4w e, H/4r, W/4r),
            "layer4": (N, 8w e, H/8r, W/8r)}`` (w the base width, e the block expansion, r the stem's stride:
            4, or 1 with the CIFAR stem).
        """
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))  # (N, w e, H/r, W/r)
        maps = {}
        for name in MAP_LAYERS:
            x = getattr(self, name)(x)  # (N, C_l, H_l, W_l)
            maps[name] = x
        return torch.flatten(self.avgpool(x), 1), maps  # (N, out_dim), {layer: map}


def norm_layer(bn_splits: int) -> NormLayer:
    """Plain BatchNorm2d for ``bn_splits == 1``, else :class:`SplitBatchNorm` with that many splits."""
    if not isinstance(bn_splits, int) or bn_splits < 1:
        raise ValueError(f"bn_splits must be a positive integer (1 = plain BatchNorm), got {bn_splits!r}")
    return nn.BatchNorm2d if bn_splits == 1 else partial(SplitBatchNorm, num_splits=bn_splits)


@dataclass(frozen=True)
class ArchSpec:
    """One architecture of :data:`ARCHS`: block type, blocks per stage, base width, stem."""

    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]
    width: int = 64
    cifar_stem: bool = False


ARCHS: dict[str, ArchSpec] = {
    "resnet18": ArchSpec(BasicBlock, (2, 2, 2, 2)),
    "resnet50": ArchSpec(Bottleneck, (3, 4, 6, 3)),
    "resnet18-cifar": ArchSpec(BasicBlock, (2, 2, 2, 2), cifar_stem=True),
    "resnet18-cifar-half": ArchSpec(BasicBlock, (2, 2, 2, 2), width=32, cifar_stem=True),
    "resnet18-cifar-quarter": ArchSpec(BasicBlock, (2, 2, 2, 2), width=16, cifar_stem=True),
}


def build_resnet(
    arch: str = "resnet18",
    *,
    norm_layer: NormLayer | None = None,
    zero_init_residual: bool = False,
    generator: torch.Generator | None = None,
) -> ResNet:
    """A ResNet backbone with torchvision's layer names and initialisation, without the classifier.

    Args:
        arch: a name of :data:`ARCHS`: ``"resnet18"`` (BasicBlock, [2, 2, 2, 2], 512 features),
            ``"resnet50"`` (Bottleneck, [3, 4, 6, 3], 2048 features), ``"resnet18-cifar"`` (3x3 stride-1
            stem, 512 features), ``"resnet18-cifar-half"`` / ``"resnet18-cifar-quarter"`` (the same at half or
            quarter width, 256 or 128 features).
        norm_layer: makes a normalisation layer from a channel count; default ``nn.BatchNorm2d``. For split
            BatchNorm pass ``functools.partial(SplitBatchNorm, num_splits=S)``.
        zero_init_residual: start the last BatchNorm of every residual branch at zero (Goyal et al. 2017).
        generator: random source of the Kaiming-normal convolution weights; ``None`` uses torch's global one.

    Returns:
        A :class:`ResNet` mapping (N, 3, H, W) images to (N, out_dim) features.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(sorted(ARCHS))}")
    spec = ARCHS[arch]
    return ResNet(
        spec.block,
        spec.layers,
        norm_layer=norm_layer or nn.BatchNorm2d,
        zero_init_residual=zero_init_residual,
        generator=generator,
        width=spec.width,
        cifar_stem=spec.cifar_stem,
    )
