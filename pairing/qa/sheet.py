"""The contact sheet of a QA export: one question per task, its images, prompt and answer, in one PNG."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pairing.qa.images import encode_png

_TEXT_WIDTH = 330  # pixels of the text column
_LINE = 12  # pixels per text line
_PAD = 6


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image


def contact_sheet(records: Sequence[Mapping[str, Any]], images: Sequence[Sequence[np.ndarray]]) -> bytes:
    """PNG bytes of a sheet with one row per record: the text on the left, its images on the right.

    Images are enlarged by the least whole factor (nearest neighbour) that gives the view at least 192
    pixels on its larger side.

    Args:
        records: QA records (``task``, ``id``, ``prompt``, ``answer``).
        images: each record's images, uint8 (h, w, 3), in its ``images`` order.

    Returns:
        The PNG (PIL's default font for the text).
    """
    from PIL import Image, ImageDraw

    if not records:
        return encode_png(np.full((2 * _PAD, _TEXT_WIDTH, 3), 255, np.uint8))
    rows = []
    for record, imgs in zip(records, images):
        scale = max(1, -(-192 // max(imgs[0].shape[:2])))
        big = [_upscale(np.asarray(im, np.uint8), scale) for im in imgs]
        lines = [f"{record['task']}  ({record['id']})", f"answer: {record['answer']}", ""]
        lines += textwrap.wrap(record["prompt"], width=54)[:12]
        height = max(max(b.shape[0] for b in big), _LINE * len(lines)) + 2 * _PAD
        rows.append((lines, big, height))
    width = _TEXT_WIDTH + max(sum(b.shape[1] + _PAD for b in big) for _, big, _ in rows) + _PAD
    sheet = Image.new("RGB", (width, sum(h for _, _, h in rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for lines, big, height in rows:
        for i, line in enumerate(lines):
            draw.text((_PAD, y + _PAD + _LINE * i), line, fill=(0, 0, 0) if i else (160, 0, 0))
        x = _TEXT_WIDTH
        for b in big:
            sheet.paste(Image.fromarray(b), (x, y + _PAD))
            x += b.shape[1] + _PAD
        draw.line([(0, y + height - 1), (width, y + height - 1)], fill=(200, 200, 200))
        y += height
    return encode_png(np.asarray(sheet))
