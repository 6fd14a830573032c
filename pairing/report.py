"""What ``ess inspect`` and ``ess preview`` show of a dataset's pairs: positives per view, example pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pairing.store import PAIRS_NAME, PairRows, positive_counts, read_pairs


def summarise_pairs(folder: str | Path) -> dict[str, Any] | None:
    """Positives per view (distribution) when ``ess pair`` has run on the dataset (the file read in row blocks)."""
    path = Path(folder) / PAIRS_NAME
    if not path.is_file():
        return None
    n_pairs, n_positive, per_view = positive_counts(path)
    q = np.percentile(per_view, [0, 10, 50, 90, 100]) if len(per_view) else np.zeros(5)
    return {
        "pairs": n_pairs,
        "positives": n_positive,
        "rule": read_pairs(path, keys=())["attrs"].get("positive_rule"),
        "positives_per_view": {"min": int(q[0]), "p10": int(q[1]), "median": int(q[2]), "p90": int(q[3]), "max": int(q[4]),
                               "mean": round(float(per_view.mean()), 2) if len(per_view) else 0.0},
        "views_without_positive": int((per_view == 0).sum()),
        "histogram": np.bincount(np.minimum(per_view, 20)).tolist(),
    }


def format_pairs_summary(p: dict[str, Any]) -> list[str]:
    """The lines ``ess inspect`` prints for :func:`summarise_pairs`."""
    out = []
    add = out.append
    d = p["positives_per_view"]
    add(f"  pairs.h5: {p['pairs']} pairs, {p['positives']} positive (rule: {p['rule']})")
    add(f"  positives per view: min {d['min']}, p10 {d['p10']}, median {d['median']}, p90 {d['p90']}, "
        f"max {d['max']}, mean {d['mean']}; {p['views_without_positive']} views without one")
    hist = p["histogram"]
    peak = max(hist) if hist else 1
    for k, c in enumerate(hist):
        label = f"{k}" if k < 20 else "20+"
        add(f"    {label:>3} {'#' * int(round(40 * c / peak)):<40} {c}")
    return out


def pairs_sheet(folder: str | Path, path: str | Path, *, count: int, seed: int) -> Path:
    """Example positive and negative pairs side by side with distance, angle, covisibility and weight."""
    from PIL import Image, ImageDraw

    from envsim.store.reader import DatasetReader

    folder, path = Path(folder), Path(path)
    pairs_path = folder / PAIRS_NAME
    if not pairs_path.is_file():
        raise ValueError(f"no {PAIRS_NAME} in {folder}; run `ess pair {folder}` first")
    rows = PairRows(pairs_path)  # each drawn pair's fields read on demand; only `positive` is read whole
    reader = DatasetReader(folder)
    rng = np.random.default_rng(seed)
    positive = rows.block("positive", 0, rows.info("positive")[0][0])  # uint8 (P,)
    pos = np.flatnonzero(positive == 1)
    neg = np.flatnonzero(positive == 0)  # near each other, yet not positives (angle, wall, ...)
    del positive
    drawn = [("positive", r) for r in rng.choice(pos, size=min(count, len(pos)), replace=False)]
    drawn += [("negative", r) for r in rng.choice(neg, size=min(count, len(neg)), replace=False)]
    if not drawn:
        raise ValueError(f"{pairs_path} holds no pairs to show")
    h, w = reader.height, reader.width
    scale = max(1, 128 // max(h, w))
    cw, ch = w * scale, h * scale
    text_w = 230
    sheet = Image.new("RGB", (2 * cw + text_w + 16, len(drawn) * (ch + 6) + 6), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    covis = "covisibility" in rows
    for k, (kind, r) in enumerate(drawn):
        a, b = rows.rows("pair", r)
        distance, angle, weight = (rows.rows(key, r) for key in ("distance", "angle", "weight"))
        y = 6 + k * (ch + 6)
        for j, v in enumerate((a, b)):
            img = Image.fromarray(reader.read("rgb", int(v))).resize((cw, ch), Image.NEAREST)
            sheet.paste(img, (6 + j * (cw + 4), y))
        lines = [
            f"{kind}  views {a} / {b}",
            f"distance {distance:.2f} m",
            f"angle {np.degrees(angle):.1f} deg",
            f"covisibility {rows.rows('covisibility', r).mean():.2f}" if covis else "covisibility n/a",
            f"weight {weight:.2f}",
        ]
        color = (0, 110, 0) if kind == "positive" else (170, 0, 0)
        for i, line in enumerate(lines):
            draw.text((2 * cw + 16, y + 2 + 12 * i), line, fill=color)
    rows.close()
    sheet.save(path)
    return path
