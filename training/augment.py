"""MoCo-v2 augmentations of a whole batch at once, on the batch's device.

Reference: X. Chen, H. Fan, R. Girshick, K. He, "Improved Baselines with Momentum Contrastive Learning"
(MoCo v2), arXiv 2003.04297; the recipe of its ``main_moco.py --aug-plus``:

    RandomResizedCrop(size, scale=(0.2, 1)) -> ColorJitter(0.4, 0.4, 0.4, 0.1) with p=0.8
    -> RandomGrayscale(p=0.2) -> GaussianBlur(sigma in [0.1, 2]) with p=0.5 -> RandomHorizontalFlip
    -> Normalize(ImageNet mean, std)

Every sample draws its own parameters from one ``torch.Generator`` (the same generator state gives the same
output), and each step is one batched tensor operation:

* crop and resize: one affine grid per sample (``F.affine_grid``) and one bilinear ``F.grid_sample``;
  crop boxes follow torchvision's ``RandomResizedCrop.get_params`` (10 tries, then a centre crop). The
  horizontal flip is folded into the same grid (mirroring the crop box's x axis); it commutes with every
  later step, which are pointwise or mirror-symmetric, so the result equals flipping last. Resizing is
  bilinear without antialiasing, so crops much larger than ``size`` alias a little.
* colour jitter as torchvision's ``ColorJitter`` (brightness: scale; contrast: blend with the mean grey
  level; saturation: blend with the greyscale image; hue: shift of H in HSV, a fraction of the full
  circle, through an RGB -> HSV -> RGB round trip), applied in that fixed order rather than a random one.
* grayscale with ITU-R 601 luma weights (0.299, 0.587, 0.114), copied to the three channels.
* Gaussian blur with a per-sample sigma: two separable grouped convolutions (one group per sample and
  channel) with reflect padding; kernel side ``int(0.1 * size)`` rounded up to odd, as SimCLR. A sample that
  is not blurred gets a one-tap delta kernel, which leaves it unchanged exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.299, 0.587, 0.114)
CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop


def _floats(name: str, value: Sequence[float], length: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {length} numbers, got {value!r}") from None
    if len(out) != length or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be {length} finite numbers, got {value!r}")
    return out


@dataclass(frozen=True)
class AugmentConfig:
    """MoCo-v2's augmentation recipe.

    Attributes:
        size: output side in pixels.
        scale: (min, max) fraction of the image area a crop covers, in (0, 1].
        ratio: (min, max) aspect ratio (width / height) of a crop.
        jitter: (brightness, contrast, saturation, hue) strengths: factors are drawn from
            [max(0, 1 - s), 1 + s] for the first three and a hue shift from [-hue, hue] (fraction of the
            colour circle, hue <= 0.5).
        jitter_p: probability of colour jitter per sample.
        gray_p: probability of turning a sample grey.
        blur_p: probability of a Gaussian blur.
        blur_sigma: (min, max) blur standard deviation in output pixels.
        flip_p: probability of a horizontal flip.
        mean: per-channel mean subtracted at the end (ImageNet's by default).
        std: per-channel standard deviation divided by at the end.
    """

    size: int = 128
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    flip_p: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {self.size!r}")
        for name, length in (("scale", 2), ("ratio", 2), ("jitter", 4), ("blur_sigma", 2), ("mean", 3), ("std", 3)):
            object.__setattr__(self, name, _floats(name, getattr(self, name), length))
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1 (fractions of the image area), got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max (width / height), got {self.ratio}")
        if min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError(f"jitter strengths must be >= 0 and the hue strength <= 0.5, got {self.jitter}")
        for name in ("jitter_p", "gray_p", "blur_p", "flip_p"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"{name} is a probability and must lie in [0, 1], got {p}")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma must satisfy 0 < min <= max (pixels), got {self.blur_sigma}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive per channel, got {self.std}")

    @property
    def blur_kernel(self) -> int:
        """Side of the Gaussian kernel in pixels: about 10 % of ``size``, odd."""
        k = int(0.1 * self.size)
        return k + 1 if k % 2 == 0 else k


def _crop_boxes(n: int, height: int, width: int, config: AugmentConfig, u: Tensor) -> Tensor:
    """torchvision's RandomResizedCrop boxes from uniforms ``u`` (N, A, 4): float64 (N, 4) (top, left, h, w)."""
    area = height * width
    target = area * (config.scale[0] + (config.scale[1] - config.scale[0]) * u[..., 0])  # (N, A)
    lo, hi = math.log(config.ratio[0]), math.log(config.ratio[1])
    aspect = torch.exp(lo + (hi - lo) * u[..., 1])  # (N, A)
    w = torch.round(torch.sqrt(target * aspect))  # (N, A)
    h = torch.round(torch.sqrt(target / aspect))  # (N, A)
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # (N, A)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)  # (N, 1) first valid try
    w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]  # (N,)
    top = torch.floor(u[..., 2].gather(1, first)[:, 0] * (height - h + 1))  # (N,)
    left = torch.floor(u[..., 3].gather(1, first)[:, 0] * (width - w + 1))  # (N,)
    # No valid try: torchvision's fallback, the largest centred crop with the ratio clamped to the range.
    in_ratio = width / height
    if in_ratio < config.ratio[0]:
        fw, fh = width, int(round(width / config.ratio[0]))
    elif in_ratio > config.ratio[1]:
        fw, fh = int(round(height * config.ratio[1])), height
    else:
        fw, fh = width, height
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], dtype=u.dtype, device=u.device)
    box = torch.stack([top, left, h, w], dim=1)  # (N, 4)
    return torch.where(ok.any(1, keepdim=True), box, fallback)


def _crop_flip_resize(img: Tensor, box: Tensor, flip: Tensor, size: int) -> Tensor:
    """Resample each crop box (flipped where asked) to ``size x size`` with one bilinear grid_sample."""
    n, _, height, width = img.shape
    top, left, h, w = box.unbind(1)  # (N,) each, pixels
    sign = 1.0 - 2.0 * flip.to(box.dtype)  # (N,) -1 mirrors the box's x axis
    theta = torch.zeros(n, 2, 3, dtype=box.dtype, device=box.device)  # (N, 2, 3) output -> input, normalised
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    theta = theta.to(device=img.device, dtype=img.dtype)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)  # (N, size, size, 2)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (N, 3, s, s)


def _gray(img: Tensor) -> Tensor:
    r, g, b = img.unbind(1)  # (N, H, W) each
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)  # (N, 1, H, W)


def _rgb_to_hsv(img: Tensor) -> Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV with H in [0, 1)."""
    r, g, b = img.unbind(1)  # (N, H, W)
    maxc, minc = img.amax(1), img.amin(1)  # (N, H, W)
    chroma = maxc - minc  # (N, H, W)
    grey = chroma == 0
    s = chroma / torch.where(maxc == 0, torch.ones_like(maxc), maxc)  # (N, H, W)
    c = torch.where(grey, torch.ones_like(chroma), chroma)  # (N, H, W) safe divisor
    h = torch.where(
        maxc == r, (g - b) / c, torch.where(maxc == g, 2.0 + (b - r) / c, 4.0 + (r - g) / c)
    )  # (N, H, W) in sextants, [-1, 5]
    h = torch.where(grey, torch.zeros_like(h), torch.remainder(h / 6.0, 1.0))  # (N, H, W)
    return torch.stack([h, s, maxc], dim=1)  # (N, 3, H, W)


def _hsv_to_rgb(hsv: Tensor) -> Tensor:
    """(N, 3, H, W) HSV -> RGB: channel with offset n is ``v - v s clamp(min(k, 4 - k), 0, 1)``, k = (n + 6h) mod 6."""
    h, s, v = hsv.unbind(1)  # (N, H, W)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device).view(1, 3, 1, 1)  # R, G, B
    k = torch.remainder(n + 6.0 * h.unsqueeze(1), 6.0)  # (N, 3, H, W)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)  # (N, 3, H, W)


def _blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    """``clamp(factor a + (1 - factor) b, 0, 1)`` with a per-sample factor (N,)."""
    f = factor.view(-1, 1, 1, 1)  # (N, 1, 1, 1)
    return torch.clamp(f * a + (1.0 - f) * b, 0.0, 1.0)


def _color_jitter(img: Tensor, factors: Tensor, config: AugmentConfig) -> Tensor:
    """Brightness, contrast, saturation, hue with per-sample factors (N, 4); 1, 1, 1, 0 change nothing."""
    bright, contrast, sat, hue = factors.unbind(1)  # (N,)
    if config.jitter[0] > 0:
        img = torch.clamp(img * bright.view(-1, 1, 1, 1), 0.0, 1.0)  # (N, 3, H, W)
    if config.jitter[1] > 0:
        img = _blend(img, _gray(img).mean((1, 2, 3), keepdim=True), contrast)  # (N, 3, H, W)
    if config.jitter[2] > 0:
        img = _blend(img, _gray(img), sat)  # (N, 3, H, W)
    if config.jitter[3] > 0:
        hsv = _rgb_to_hsv(img)  # (N, 3, H, W)
        h = torch.remainder(hsv[:, :1] + hue.view(-1, 1, 1, 1), 1.0)  # (N, 1, H, W)
        shifted = _hsv_to_rgb(torch.cat([h, hsv[:, 1:]], 1))  # (N, 3, H, W)
        img = torch.where((hue != 0).view(-1, 1, 1, 1), shifted, img)
    return img


def _gaussian_blur(img: Tensor, sigma: Tensor, blur: Tensor, kernel: int) -> Tensor:
    """Separable Gaussian blur, sigma (N,) pixels per sample; samples with ``blur`` False are left unchanged."""
    n, c, height, width = img.shape
    x = torch.arange(kernel, dtype=img.dtype, device=img.device) - kernel // 2  # (k,)
    g = torch.exp(-(x * x) / (2.0 * sigma.view(-1, 1) ** 2))  # (N, k)
    g = g / g.sum(1, keepdim=True)  # (N, k)
    delta = (x == 0).to(img.dtype).expand(n, kernel)  # (N, k)
    g = torch.where(blur.view(-1, 1), g, delta)  # (N, k)
    g = g.repeat_interleave(c, dim=0)  # (N*3, k) one kernel per sample and channel
    pad = kernel // 2
    x = F.pad(img, (pad, pad, pad, pad), mode="reflect").reshape(1, n * c, height + 2 * pad, width + 2 * pad)
    x = F.conv2d(x, g.view(n * c, 1, kernel, 1), groups=n * c)  # (1, N*3, H, W + 2p)
    x = F.conv2d(x, g.view(n * c, 1, 1, kernel), groups=n * c)  # (1, N*3, H, W)
    return x.view(n, c, height, width)


@dataclass(frozen=True)
class CropParams:
    """Where each augmented view shows its image: what correspondence between two views needs.

    Attributes:
        box: float32 (N, 4) crop box (top, left, h, w) in input pixels (integer-valued), on the images' device.
        flip: bool (N,) the view is mirrored left-right (output column 0 shows the box's right edge).
        image_size: (H, W) of the input images, pixels.
    """

    box: Tensor
    flip: Tensor
    image_size: tuple[int, int]


def _as_float(images: Tensor) -> Tensor:
    """(N, 3, H, W) uint8 in [0, 255] or floating in [0, 1] -> floating in [0, 1] (uint8 becomes float32)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape (N, 3, H, W), got {tuple(images.shape)}; "
            "for (N, H, W, 3) arrays use images.permute(0, 3, 1, 2)"
        )
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0  # (N, 3, H, W)
    if images.is_floating_point():
        return images
    raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")


def _normalise(img: Tensor, config: AugmentConfig) -> Tensor:
    mean = torch.tensor(config.mean, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img - mean) / std  # (N, 3, size, size)


def crop_views(images: Tensor, box: Tensor, *, config: AugmentConfig) -> Tensor:
    """Given crop boxes resized to ``config.size`` and normalised, with no other augmentation (no flip, no colour).

    Args:
        images: (N, 3, H, W) uint8 in [0, 255] or floating point in [0, 1].
        box: (N, 4) (top, left, h, w) in input pixels.
        config: output size and normalisation.

    Returns:
        (N, 3, size, size) normalised crops (bilinear, as :func:`moco_v2_augment` resamples).
    """
    img = _as_float(images)  # (N, 3, H, W)
    box = box.to(device=img.device, dtype=torch.float64)  # (N, 4)
    flip = torch.zeros(img.shape[0], dtype=torch.bool, device=img.device)  # (N,)
    return _normalise(_crop_flip_resize(img, box, flip, config.size), config)  # (N, 3, size, size)


def moco_v2_augment(
    images: Tensor, *, config: AugmentConfig, generator: torch.Generator, return_params: bool = False
) -> Tensor | tuple[Tensor, CropParams]:
    """One MoCo-v2 view of every image in a batch.

    Args:
        images: (N, 3, H, W) uint8 in [0, 255] or floating point in [0, 1], on any device.
        config: the recipe.
        generator: source of every random parameter; parameters are drawn on the generator's device and
            moved to the images' device, so a CPU generator serves GPU images too.
        return_params: also return each view's crop box and flip (the random draws are the same either way).

    Returns:
        (N, 3, size, size) normalised images, float32 (or the input's floating dtype), on the input's device;
        with ``return_params``, also their :class:`CropParams`.
    """
    img = _as_float(images)  # (N, 3, H, W)
    n, _, height, width = img.shape
    dev = generator.device
    u_crop = torch.rand(n, CROP_ATTEMPTS, 4, generator=generator, device=dev, dtype=torch.float64)  # (N, A, 4)
    u = torch.rand(n, 9, generator=generator, device=dev, dtype=torch.float64)  # (N, 9)
    box = _crop_boxes(n, height, width, config, u_crop)  # (N, 4)
    flip = u[:, 0] < config.flip_p  # (N,)
    out = _crop_flip_resize(img, box.to(img.device), flip.to(img.device), config.size)  # (N, 3, s, s)

    if config.jitter_p > 0 and max(config.jitter) > 0:
        b, c, s, h = config.jitter
        lows = torch.tensor([max(0.0, 1 - b), max(0.0, 1 - c), max(0.0, 1 - s), -h], dtype=u.dtype, device=dev)
        highs = torch.tensor([1 + b, 1 + c, 1 + s, h], dtype=u.dtype, device=dev)
        factors = lows + (highs - lows) * u[:, 2:6]  # (N, 4)
        identity = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=u.dtype, device=dev)
        factors = torch.where((u[:, 1] < config.jitter_p).view(-1, 1), factors, identity)  # (N, 4)
        out = _color_jitter(out, factors.to(device=out.device, dtype=out.dtype), config)
    if config.gray_p > 0:
        gray = (u[:, 6] < config.gray_p).to(out.device).view(-1, 1, 1, 1)  # (N, 1, 1, 1)
        out = torch.where(gray, _gray(out).expand_as(out), out)  # (N, 3, s, s)
    if config.blur_p > 0 and config.blur_kernel > 1:
        lo, hi = config.blur_sigma
        sigma = (lo + (hi - lo) * u[:, 8]).to(device=out.device, dtype=out.dtype)  # (N,)
        out = _gaussian_blur(out, sigma, (u[:, 7] < config.blur_p).to(out.device), config.blur_kernel)
    out = _normalise(out, config)  # (N, 3, size, size)
    if not return_params:
        return out
    params = CropParams(box=box.to(device=out.device, dtype=torch.float32), flip=flip.to(out.device),
                        image_size=(height, width))
    return out, params
