"""Frozen encoders for evaluation: a trained run's backbone, or the same architecture at random init."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.augment import IMAGENET_MEAN, IMAGENET_STD  # the normalisation training used
from training.resnet import build_resnet

ENCODER_NAME = "encoder.pt"


class UnsafeFileError(ValueError):
    """A checkpoint that holds more than tensors and plain data: unpickling it could run code, so it is refused."""


def load_plain(source: str | os.PathLike | bytes, *, map_location: str | torch.device = "cpu", name: str = "") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings, lists, dicts, nothing that runs code.

    A file someone shares (an ``encoder.pt`` above all) is only data, so loading it must not execute anything.

    Args:
        source: a file path, or the file's bytes.
        map_location: where tensors go.
        name: the file's name for the message (default: the path).

    Raises:
        UnsafeFileError: the file holds other objects (refused in one line, before anything of it runs).
    """
    what = name or str(source if not isinstance(source, bytes) else "the file")
    try:
        return torch.load(io.BytesIO(source) if isinstance(source, bytes) else source, map_location=map_location,
                          weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsafeFileError(f"refusing to load {what}: it holds objects other than tensors and plain data, and "
                              f"loading them could run code ({first[:160]})") from None


def load_encoder(run: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The query backbone of a training run, in eval mode, and its record.

    Args:
        run: a run folder (with ``encoder.pt``) or the ``encoder.pt`` file itself.
        device: where to put the model.

    Returns:
        (backbone mapping (N, 3, H, W) normalised images to (N, C) features, the saved record plus
        ``sha256`` of the file).

    Raises:
        FileNotFoundError: no encoder there.
        UnsafeFileError: the file holds more than tensors and plain data.
    """
    path = Path(run)
    if path.is_dir():
        path = path / ENCODER_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {ENCODER_NAME} at {path}; train one with `ess train`")
    raw = path.read_bytes()
    record = load_plain(raw, name=str(path))
    model = build_resnet(record["arch"])
    model.load_state_dict(record["state_dict"])
    record = {k: v for k, v in record.items() if k != "state_dict"}
    record["sha256"] = hashlib.sha256(raw).hexdigest()
    return model.to(device).eval(), record


def random_encoder(arch: str, *, seed: int, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The architecture at its random initialisation (the floor a trained encoder is read against)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = build_resnet(arch)
    torch.random.set_rng_state(gen_state)
    return model.to(device).eval()


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (to check that evaluation left the encoder unchanged)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def embed(
    model: torch.nn.Module, images: np.ndarray | torch.Tensor, *, batch_size: int = 256, size: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Features of uint8 RGB images (N, H, W, 3): resized to ``size`` (if given), ImageNet-normalised.

    Returns:
        float32 (N, C).
    """
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(np.asarray(images[i : i + batch_size])).to(device).permute(0, 3, 1, 2).float() / 255.0
        if size is not None and (x.shape[-1] != size or x.shape[-2] != size):
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(model((x - mean) / std).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
