"""MoCo-v2 batch augmentations: determinism, each step in isolation against a direct computation."""

from __future__ import annotations

import colorsys
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.augment import (
    CROP_ATTEMPTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    _crop_boxes,
    _gaussian_blur,
    _hsv_to_rgb,
    _rgb_to_hsv,
    moco_v2_augment,
)

NOTHING = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0, flip_p=0.0)

def _images(n=6, size=32, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


def _augment(x, seed=0, **kw):
    return moco_v2_augment(x, config=AugmentConfig(**kw), generator=torch.Generator().manual_seed(seed))


def test_shapes_dtypes_finite_and_fast():
    x = _images(16)
    t0 = time.perf_counter()
    y = _augment(x, size=24)  # every step on: crop, flip, jitter with hue, grey, blur
    elapsed = time.perf_counter() - t0
    assert y.shape == (16, 3, 24, 24) and y.dtype == torch.float32 and y.device == x.device
    assert torch.isfinite(y).all()
    assert elapsed < 1.0
    assert _augment(x.double() / 255, size=24).dtype == torch.float64


def test_same_generator_state_same_output():
    x = _images()
    assert torch.equal(_augment(x, seed=3, size=32), _augment(x, seed=3, size=32))
    assert not torch.equal(_augment(x, seed=3, size=32), _augment(x, seed=4, size=32))


def test_identity_when_nothing_is_random():
    x = _images()
    xf = x.float() / 255
    torch.testing.assert_close(_augment(x, size=32, **NOTHING), _normalise(xf), rtol=0, atol=1e-5)
    resized = F.interpolate(xf, size=(20, 20), mode="bilinear", align_corners=False)
    torch.testing.assert_close(_augment(x, size=20, **NOTHING), _normalise(resized), rtol=0, atol=5e-5)
    up = F.interpolate(xf, size=(48, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(_augment(xf, size=48, **NOTHING), _normalise(up), rtol=0, atol=5e-5)


def test_flip_only():
    x = _images()
    flipped = _normalise(x.float().flip(-1) / 255)
    torch.testing.assert_close(_augment(x, size=32, **{**NOTHING, "flip_p": 1.0}), flipped, rtol=0, atol=1e-5)
    half = _augment(_images(64), size=32, **{**NOTHING, "flip_p": 0.5})
    plain, mirrored = _normalise(_images(64).float() / 255), _normalise(_images(64).float().flip(-1) / 255)
    is_flipped = [torch.allclose(h, m, atol=1e-5) for h, m in zip(half, mirrored)]
    assert all(f or torch.allclose(h, p, atol=1e-5) for f, h, p in zip(is_flipped, half, plain))
    assert 10 < sum(is_flipped) < 54


def test_grayscale_only():
    x = _images()
    y = _unnormalise(_augment(x, size=32, **{**NOTHING, "gray_p": 1.0}))
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-5) and torch.allclose(y[:, 1], y[:, 2], atol=1e-5)
    xf = x.float() / 255
    luma = 0.299 * xf[:, 0] + 0.587 * xf[:, 1] + 0.114 * xf[:, 2]
    torch.testing.assert_close(y[:, 0], luma, rtol=0, atol=1e-5)


def test_brightness_factor_per_sample():
    x = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.1  # never clamped at 1.4
    y = _unnormalise(_augment(x, size=16, **{**NOTHING, "jitter_p": 1.0, "jitter": (0.4, 0, 0, 0)}))
    ratio = y / x  # (N, 3, H, W)
    factor = ratio.flatten(1).mean(1)  # (N,)
    torch.testing.assert_close(ratio, factor.view(-1, 1, 1, 1).expand_as(ratio), rtol=0, atol=1e-4)
    assert factor.min() >= 0.6 - 1e-5 and factor.max() <= 1.4 + 1e-5
    assert factor.std() > 0.1  # drawn per sample, spread over [0.6, 1.4]


def test_contrast_and_saturation_keep_grey_level():
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.6 + 0.2
    grey = torch.full_like(x, 0.5)
    y = _unnormalise(_augment(grey, size=16, **{**NOTHING, "jitter_p": 1.0, "jitter": (0, 0.4, 0.4, 0.1)}))
    torch.testing.assert_close(y, grey, rtol=0, atol=1e-5)  # a flat grey image has nothing to jitter
    y = _unnormalise(_augment(x, size=16, **{**NOTHING, "jitter_p": 1.0, "jitter": (0, 0.4, 0, 0)}))
    mean = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2))
    mean_y = (0.299 * y[:, 0] + 0.587 * y[:, 1] + 0.114 * y[:, 2]).mean((1, 2))
    torch.testing.assert_close(mean_y, mean, rtol=0, atol=1e-4)  # contrast pivots about the mean grey


def test_hsv_round_trip_matches_colorsys():
    rgb = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(5))
    rgb[0, :, 0, 0] = torch.tensor([0.3, 0.3, 0.3])  # grey: hue 0, saturation 0
    rgb[0, :, 0, 1] = 0.0  # black
    hsv = _rgb_to_hsv(rgb)
    for i in range(7):
        for j in range(9):
            ref = colorsys.rgb_to_hsv(*rgb[0, :, i, j].double().tolist())
            np.testing.assert_allclose(hsv[0, :, i, j].double().numpy(), ref, atol=1e-5)
            back = colorsys.hsv_to_rgb(*ref)
            np.testing.assert_allclose(_hsv_to_rgb(hsv)[0, :, i, j].double().numpy(), back, atol=1e-5)
    torch.testing.assert_close(_hsv_to_rgb(hsv), rgb, rtol=0, atol=1e-5)


def test_hue_shift_keeps_value_and_saturation():
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    y = _unnormalise(_augment(x, size=16, **{**NOTHING, "jitter_p": 1.0, "jitter": (0, 0, 0, 0.1)}))
    hx, hy = _rgb_to_hsv(x), _rgb_to_hsv(y)
    torch.testing.assert_close(hy[:, 1:], hx[:, 1:], rtol=0, atol=1e-4)
    shift = torch.remainder(hy[:, 0] - hx[:, 0] + 0.5, 1.0) - 0.5  # (N, H, W), per sample one shift
    coloured = hx[:, 1] > 0.1
    per_sample = torch.stack([s[c].median() for s, c in zip(shift, coloured)])
    assert per_sample.abs().max() <= 0.1 + 1e-4 and per_sample.std() > 0.01


def _slow_blur(img: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Reference: a 2-D Gaussian kernel per sample, one convolution per sample."""
    out = torch.empty_like(img)
    r = kernel // 2
    for n in range(img.shape[0]):
        x = torch.arange(-r, r + 1, dtype=img.dtype)
        g = torch.exp(-(x**2) / (2 * sigma[n] ** 2))
        k2 = torch.outer(g, g) / g.sum() ** 2
        padded = F.pad(img[n : n + 1], (r, r, r, r), mode="reflect")
        out[n] = F.conv2d(padded, k2.expand(3, 1, kernel, kernel), groups=3)[0]
    return out


def test_blur_matches_per_sample_reference_and_delta_is_identity():
    img = torch.rand(4, 3, 20, 20, generator=torch.Generator().manual_seed(7))
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0])
    blurred = _gaussian_blur(img, sigma, torch.tensor([True, True, False, True]), 5)
    ref = _slow_blur(img, sigma, 5)
    torch.testing.assert_close(blurred[[0, 1, 3]], ref[[0, 1, 3]], rtol=0, atol=1e-5)
    assert torch.equal(blurred[2], img[2])
    flat = torch.full((2, 3, 16, 16), 0.3)
    out = _augment(flat, size=16, **{**NOTHING, "blur_p": 1.0})
    torch.testing.assert_close(_unnormalise(out), flat, rtol=0, atol=1e-5)
    assert AugmentConfig(size=128).blur_kernel == 13 and AugmentConfig(size=224).blur_kernel == 23


def test_crop_boxes_inside_image_and_within_scale_and_ratio():
    cfg = AugmentConfig()
    u = torch.rand(500, CROP_ATTEMPTS, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    top, left, h, w = _crop_boxes(500, 60, 80, cfg, u).unbind(1)
    assert torch.all(top >= 0) and torch.all(left >= 0) and torch.all(top + h <= 60) and torch.all(left + w <= 80)
    area = h * w / (60 * 80)
    assert area.min() > 0.2 - 0.05 and area.max() <= 1.0
    aspect = w / h
    assert aspect.min() > 0.75 - 0.1 and aspect.max() < 4 / 3 + 0.1
    # No try can fit: torchvision's centre-crop fallback with the ratio clamped.
    wide = AugmentConfig(scale=(1.0, 1.0), ratio=(2.0, 2.0))
    box = _crop_boxes(3, 40, 40, wide, u[:3])
    assert box.tolist() == [[10.0, 0.0, 20.0, 40.0]] * 3


def test_crop_resamples_the_drawn_box():
    # A horizontal ramp image(x) = x: bilinear sampling reproduces the source x of every output pixel.
    n, height, width, size = 8, 40, 50, 16
    ramp = torch.arange(width, dtype=torch.float64).expand(n, 3, height, width) / width
    cfg = dict(**{**NOTHING, "scale": (0.2, 0.8), "ratio": (0.75, 1.33)}, size=size)
    y = _unnormalise(_augment(ramp, seed=9, **cfg).double())
    u = torch.rand(n, CROP_ATTEMPTS, 4, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    top, left, h, w = _crop_boxes(n, height, width, AugmentConfig(**cfg), u).unbind(1)
    j = torch.arange(size, dtype=torch.float64)
    src = left.view(-1, 1) + (j + 0.5) * w.view(-1, 1) / size - 0.5  # (N, size) source pixel x
    src = src.clamp(0, width - 1)
    torch.testing.assert_close(y[:, 0, size // 2, :] * width, src, rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 0),
        ("scale", (0.5, 0.2)),
        ("scale", (0.1, 1.5)),
        ("jitter", (0.4, 0.4, 0.4, 0.7)),
        ("gray_p", 1.5),
        ("blur_sigma", (0, 1)),
        ("std", (0.2, 0.0, 0.2)),
    ],
)
def test_config_validates(field, value):
    with pytest.raises(ValueError, match=field):
        AugmentConfig(**{field: value})


def test_bad_images_rejected():
    with pytest.raises(ValueError, match="permute"):
        _augment(torch.zeros(2, 8, 8, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        _augment(torch.zeros(2, 3, 8, 8, dtype=torch.int32))
    assert math.isclose(AugmentConfig(ratio=[0.5, 2]).ratio[1], 2.0)  # lists become tuples


def test_return_params_draws_the_same_views():
    """return_params adds each view's crop box and flip without changing the draws or the images."""
    images = _images(n=8)
    plain = moco_v2_augment(images, config=AugmentConfig(size=24), generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    out, params = moco_v2_augment(images, config=AugmentConfig(size=24), generator=gen, return_params=True)
    assert torch.equal(out, plain)
    follow = torch.Generator().manual_seed(3)
    moco_v2_augment(images, config=AugmentConfig(size=24), generator=follow)
    assert torch.equal(gen.get_state(), follow.get_state())  # the same number of draws
    u_crop = torch.rand(8, CROP_ATTEMPTS, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(params.box, _crop_boxes(8, 32, 32, AugmentConfig(size=24), u_crop).float())
    assert params.box.dtype == torch.float32 and params.flip.dtype == torch.bool and params.image_size == (32, 32)
    assert 0 < int(params.flip.sum()) < 8


def test_params_say_which_image_point_each_output_pixel_shows():
    """On ramp images (value = image x / W, resp. y / H, at every point: bilinear resampling keeps them exact),
    each output pixel's value is the image coordinate that training.correspondence.view_to_image gives for it,
    flips included."""
    from training.correspondence import cell_centres, view_to_image

    h, w, s, n = 40, 48, 16, 32
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) / h
    ramp = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w), torch.zeros(h, w, dtype=torch.float64)])
    images = ramp.expand(n, 3, h, w).contiguous()
    cfg = AugmentConfig(size=s, scale=(0.2, 0.6), jitter_p=0.0, gray_p=0.0, blur_p=0.0, mean=(0, 0, 0), std=(1, 1, 1))
    out, params = moco_v2_augment(images, config=cfg, generator=torch.Generator().manual_seed(0), return_params=True)
    assert 0 < int(params.flip.sum()) < n
    u, v = cell_centres(s, s)
    x, y = view_to_image(u.expand(n, s, s).double(), v.expand(n, s, s).double(), params)  # (N, s, s) pixels
    inside = (x > 0.5) & (x < w - 0.5) & (y > 0.5) & (y < h - 0.5)  # away from the border clamp
    assert inside.float().mean() > 0.8
    torch.testing.assert_close(out[:, 0][inside] * w, x[inside].to(out.dtype), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 1][inside] * h, y[inside].to(out.dtype), atol=1e-6, rtol=0)


def test_crop_views_resample_the_box_without_other_changes():
    from training.augment import crop_views

    images = _images(n=3, size=40)
    box = torch.tensor([[0.0, 0.0, 40.0, 40.0], [8.0, 4.0, 20.0, 20.0], [10.0, 10.0, 10.0, 10.0]])
    out = crop_views(images, box, config=AugmentConfig(size=20))
    assert out.shape == (3, 3, 20, 20)
    whole = F.interpolate(images[:1].float() / 255, size=(20, 20), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[:1], _normalise(whole))
    torch.testing.assert_close(out[1], _normalise(images[1:2, :, 8:28, 4:24].float() / 255)[0])  # 20 px box at 20 px
