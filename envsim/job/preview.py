"""PNG pictures of a rendered dataset (``ess preview``).

- ``contact_sheet.png``: a grid of views, RGB above its depth (near = bright, no surface = black);
- ``map-<scene>.png``: a top-down map of each scene's navigable area with the trajectories drawn on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A perceptual sequential colour map (viridis anchors), interpolated to 256 entries.
_ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
COLORMAP = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def colorize_depth(depth: np.ndarray, max_depth: float | None = None) -> np.ndarray:
    """uint8 (..., 3) picture of z-depth (H, W) in metres: near is bright, no surface (0) is black."""
    d = np.asarray(depth, np.float64)
    valid = d > 0
    top = max_depth if max_depth is not None else (float(d[valid].max()) if valid.any() else 1.0)
    x = np.clip(1.0 - d / max(top, 1e-6), 0, 1)
    img = COLORMAP[(x * 255).astype(np.int64)]
    img[~valid] = 0
    return img


def contact_sheet(rgb: np.ndarray, depth: np.ndarray, *, columns: int = 8, labels: list[str] | None = None):
    """A PIL image: each cell is a view's RGB above its depth.

    Args:
        rgb: uint8 (N, H, W, 3).
        depth: (N, H, W) metres.
        columns: cells per row.
        labels: optional caption per view.
    """
    from PIL import Image, ImageDraw

    n, h, w = depth.shape
    cols = min(columns, n)
    rows = -(-n // cols)
    pad, cap = 4, 12 if labels else 0
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (2 * h + cap + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    top = float(np.percentile(depth[depth > 0], 99)) if np.any(depth > 0) else 1.0
    for i in range(n):
        x = pad + (i % cols) * (w + pad)
        y = pad + (i // cols) * (2 * h + cap + pad)
        sheet.paste(Image.fromarray(rgb[i]), (x, y))
        sheet.paste(Image.fromarray(colorize_depth(depth[i], top)), (x, y + h))
        if labels:
            draw.text((x, y + 2 * h), labels[i][: max(1, w // 6)], fill=(0, 0, 0))
    return sheet


def trajectory_map(nav, position: np.ndarray, trajectory: np.ndarray, *, scale: int = 4, bounds=None):
    """A PIL top-down map (x right, -z up, i.e. north = -Z): navigable cells light, the rest dark,
    each trajectory a coloured polyline with a dot at its start.

    Args:
        nav: a :class:`~envsim.nav.grid.NavGrid` or None (then only the poses are drawn).
        position: (N, 3) camera centres, metres.
        trajectory: (N,) trajectory ids (views of one trajectory in step order).
        scale: output pixels per grid cell.
        bounds: ((xmin, zmin), (xmax, zmax)) when ``nav`` is None.
    """
    from PIL import Image, ImageDraw

    if nav is not None:
        cell = nav.cell_size
        x0, z0 = nav.origin[0] - cell / 2, nav.origin[1] - cell / 2
        grid = np.where(nav.walkable, 235, 60).astype(np.uint8)
        img = Image.fromarray(np.repeat(grid[..., None], 3, axis=2)).resize(
            (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST
        )
    else:
        (x0, z0), (x1, z1) = bounds if bounds is not None else (position[:, [0, 2]].min(0) - 1, position[:, [0, 2]].max(0) + 1)
        cell = 0.05
        img = Image.new("RGB", (int((x1 - x0) / cell * scale) + 1, int((z1 - z0) / cell * scale) + 1), (235, 235, 235))
    draw = ImageDraw.Draw(img)

    def px(p: np.ndarray) -> list[tuple[float, float]]:
        return [((x - x0) / cell * scale, (z - z0) / cell * scale) for x, z in p[:, [0, 2]]]

    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
               (240, 50, 230), (128, 128, 0), (0, 128, 128), (170, 110, 40)]
    for k, t in enumerate(np.unique(trajectory)):
        pts = px(position[trajectory == t])
        color = palette[k % len(palette)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        sx, sy = pts[0]
        draw.ellipse([sx - 4, sy - 4, sx + 4, sy + 4], fill=color)
    return img


def write_previews(folder: str | Path, out: str | Path | None = None, *, count: int = 24, seed: int = 0) -> list[Path]:
    """Draw the contact sheet and one trajectory map per scene (``pairing.report.pairs_sheet`` draws pairs).

    Args:
        folder: a rendered dataset folder.
        out: where to write the PNGs (default ``<folder>/preview``).
        count: views on the contact sheet.
        seed: which views to pick.

    Returns:
        The written files.

    Raises:
        ValueError: not a dataset folder, or no finished shard.
    """
    from envsim.job.worker import load_nav, safe_name
    from envsim.store.shards import read_manifest, read_shard

    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} is not a dataset folder: {exc}") from exc
    shards = manifest.get("shards", [])
    if not shards:
        raise ValueError(f"{folder} holds no finished shard yet")
    out = Path(out) if out else folder / "preview"
    out.mkdir(parents=True, exist_ok=True)
    meta = [read_shard(folder / e["file"], images=False) for e in shards]
    scene = np.concatenate([m["scene"] for m in meta])
    total = len(scene)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(total, size=min(count, total), replace=False))
    import h5py

    rgb, depth, labels = [], [], []
    starts = np.cumsum([0] + [len(m["scene"]) for m in meta])
    room_names, scene_names = manifest["room_names"], manifest["scene_names"]
    for g in pick:
        s = int(np.searchsorted(starts, g, side="right") - 1)
        i = int(g - starts[s])
        with h5py.File(folder / shards[s]["file"], "r") as f:
            rgb.append(f["rgb"][i])
            depth.append(np.asarray(f["depth"][i], np.float32))
        r = int(meta[s]["room"][i])
        labels.append(room_names[r] if r >= 0 else "?")
    sheet = contact_sheet(np.stack(rgb), np.stack(depth), labels=labels)
    written = [out / "contact_sheet.png"]
    sheet.save(written[0])
    position = np.concatenate([m["position"] for m in meta])
    trajectory = np.concatenate([m["trajectory"] for m in meta])
    for idx, name in enumerate(scene_names):
        sel = scene == idx
        if not sel.any():
            continue
        img = trajectory_map(load_nav(folder, name), position[sel], trajectory[sel])
        path = out / f"map-{safe_name(name)}.png"
        img.save(path)
        written.append(path)
    return written
