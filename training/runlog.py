"""A run's log: ``log.jsonl`` (one JSON line per logged step) and its plot ``loss.png``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def truncate_log(path: Path, step: int) -> None:
    """Keep the log lines of steps <= ``step`` (a resumed run rewrites what came after its checkpoint)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in keep))


def plot_log(log_path: Path, png_path: Path) -> None:
    """Loss and learning rate against step, as a PNG (Pillow only)."""
    from PIL import Image, ImageDraw

    if not log_path.exists():
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    if len(rows) < 2:
        return
    w, h, pad = 640, 360, 48
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    steps = np.array([r["step"] for r in rows], float)
    for key, colour in (("loss", (31, 119, 180)), ("lr", (214, 39, 40))):
        v = np.array([r[key] for r in rows], float)
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        x = pad + (steps - steps[0]) / max(steps[-1] - steps[0], 1) * (w - 2 * pad)
        y = h - pad - (v - lo) / span * (h - 2 * pad)
        d.line(list(zip(x.tolist(), y.tolist())), fill=colour, width=2)
        d.text((pad if key == "loss" else w - 3 * pad, 8), f"{key} {lo:.3g}..{hi:.3g}", fill=colour)
    d.rectangle([pad, pad, w - pad, h - pad], outline=(0, 0, 0))
    d.text((w // 2 - 20, h - pad + 12), "step", fill=(0, 0, 0))
    img.save(png_path)
