"""``ess inspect PATH``: summarise a dataset folder, a shard, a scene file or a saved navigable grid."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from envsim.cli import UserError
from envsim.shards import MANIFEST_NAME, read_manifest, read_shard


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset folder, shard-*.h5, scene file (.glb .gltf .ply .obj) or nav/*.npz")
    p.add_argument("--up", choices=["y", "z"], default="y", help="up axis when PATH is a mesh (default y)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1000
    return ""


def summarise_dataset(folder: Path) -> dict[str, Any]:
    """Counts per scene and room, resolution, intrinsics and disk size of a rendered dataset."""
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise UserError(f"{folder} is not a dataset folder (no readable {MANIFEST_NAME}): {exc}") from exc
    scenes, rooms = Counter(), Counter()
    shards = manifest.get("shards", [])
    for entry in shards:
        data = read_shard(folder / entry["file"], images=False)
        scenes.update(data["scene"].tolist())
        rooms.update(data["room"].tolist())
    names, room_names = manifest["scene_names"], manifest["room_names"]
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shard_bytes = sum((folder / e["file"]).stat().st_size for e in shards)
    cfg = manifest["config"]
    pairs = _pairs_summary(folder)
    return {
        **({"pairs": pairs} if pairs else {}),
        "path": str(folder),
        "complete": manifest.get("complete", False),
        "views": int(sum(scenes.values())),
        "planned_views": manifest["total_samples"],
        "shards": len(shards),
        "width": manifest["width"],
        "height": manifest["height"],
        "hfov_deg": cfg["render"]["hfov_deg"],
        "K": manifest["K"],
        "depth_dtype": cfg["depth_dtype"],
        "compression": cfg["compression"],
        "seed": manifest["seed"],
        "code_version": manifest["code_version"],
        "disk_bytes": disk,
        "shard_bytes": shard_bytes,
        "per_scene": {names[i]: scenes.get(i, 0) for i in range(len(names))},
        "per_room": {(room_names[r] if r >= 0 else "unknown"): c for r, c in sorted(rooms.items())},
    }


def _pairs_summary(folder: Path) -> dict[str, Any] | None:
    """Positives per view (distribution) when ``ess pair`` has run on the dataset."""
    path = folder / "pairs.h5"
    if not path.is_file():
        return None
    from pairing.build import positives_per_view
    from pairing.store import read_pairs

    data = read_pairs(path, keys=("pair", "positive"))
    per_view = positives_per_view(data)
    q = np.percentile(per_view, [0, 10, 50, 90, 100]) if len(per_view) else np.zeros(5)
    return {
        "pairs": int(len(data["pair"])),
        "positives": int(data["positive"].sum()),
        "rule": data["attrs"].get("positive_rule"),
        "positives_per_view": {"min": int(q[0]), "p10": int(q[1]), "median": int(q[2]), "p90": int(q[3]), "max": int(q[4]),
                               "mean": round(float(per_view.mean()), 2) if len(per_view) else 0.0},
        "views_without_positive": int((per_view == 0).sum()),
        "histogram": np.bincount(np.minimum(per_view, 20)).tolist(),
    }


def summarise_mesh(path: Path, up: str) -> dict[str, Any]:
    from envsim.scene import SceneError, UpAxis, load_scene

    try:
        scene = load_scene(path, up=UpAxis(up))
    except SceneError as exc:
        raise UserError(str(exc)) from exc
    b = scene.bounds
    return {
        "path": str(path),
        "triangles": scene.n_triangles,
        "vertices": int(len(scene.vertices)),
        "objects": len(scene.object_names),
        "materials": len(scene.materials),
        "textured_materials": sum(m.texture is not None for m in scene.materials),
        "bounds_min": b[0].round(3).tolist(),
        "bounds_max": b[1].round(3).tolist(),
        "rooms": [r.label for r in scene.rooms],
        "sha256": scene.sha256,
    }


def summarise_nav(path: Path) -> dict[str, Any]:
    from envsim.navigation import NavGrid

    nav = NavGrid.load(path)
    return {
        "path": str(path),
        "cells": int(nav.walkable.sum()),
        "grid": list(nav.walkable.shape),
        "cell_size": nav.cell_size,
        "navigable_area_m2": round(float(nav.area_m2), 3),
    }


def summarise_shard(path: Path) -> dict[str, Any]:
    data = read_shard(path, images=False)
    a = data["attrs"]
    import h5py

    with h5py.File(path, "r") as f:
        shape = f["rgb"].shape
        datasets = {k: f"{f[k].dtype} {tuple(f[k].shape)}" for k in f.keys()}
    rooms = Counter(data["room"].tolist())
    return {
        "path": str(path),
        "samples": shape[0],
        "height": shape[1],
        "width": shape[2],
        "K": np.asarray(a["K"]).tolist(),
        "datasets": datasets,
        "scenes": sorted({a["scene_names"][i] for i in data["scene"].tolist()}),
        "per_room": {(a["room_names"][r] if r >= 0 else "unknown"): c for r, c in sorted(rooms.items())},
        "format_version": int(a["format_version"]),
        "disk_bytes": path.stat().st_size,
    }


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UserError(f"not found: {path}")
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            summary = summarise_dataset(path)
        elif suffix == ".h5":
            summary = summarise_shard(path)
        elif suffix == ".npz":
            summary = summarise_nav(path)
        elif suffix in (".glb", ".gltf", ".ply", ".obj"):
            summary = summarise_mesh(path, args.up)
        else:
            raise UserError(f"cannot inspect {path.name}: give a dataset folder, a shard, a mesh or a nav .npz")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    _print_summary(summary)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    print(s["path"])
    if "planned_views" in s:
        state = "complete" if s["complete"] else f"INCOMPLETE ({s['views']} of {s['planned_views']} views)"
        print(f"  {s['views']} views in {s['shards']} shard(s), {state}")
        print(f"  resolution {s['width']}x{s['height']}, hfov {s['hfov_deg']} deg, depth {s['depth_dtype']}, compression {s['compression']}")
        k = s["K"]
        print(f"  K: fx={k[0][0]:.3f} fy={k[1][1]:.3f} cx={k[0][2]:.3f} cy={k[1][2]:.3f}")
        print(f"  disk: {_size(s['disk_bytes'])} ({_size(s['shard_bytes'])} in shards)")
        print(f"  seed {s['seed']}, code {s['code_version']}")
        _table("views per scene", s["per_scene"], s["views"])
        _table("views per room (camera position)", s["per_room"], s["views"])
        if "pairs" in s:
            p = s["pairs"]
            d = p["positives_per_view"]
            print(f"  pairs.h5: {p['pairs']} pairs, {p['positives']} positive (rule: {p['rule']})")
            print(f"  positives per view: min {d['min']}, p10 {d['p10']}, median {d['median']}, p90 {d['p90']}, "
                  f"max {d['max']}, mean {d['mean']}; {p['views_without_positive']} views without one")
            hist = p["histogram"]
            peak = max(hist) if hist else 1
            for k, c in enumerate(hist):
                label = f"{k}" if k < 20 else "20+"
                print(f"    {label:>3} {'#' * int(round(40 * c / peak)):<40} {c}")
    elif "samples" in s:
        print(f"  {s['samples']} samples, {s['width']}x{s['height']}, format {s['format_version']}, {_size(s['disk_bytes'])}")
        k = s["K"]
        print(f"  K: fx={k[0][0]:.3f} fy={k[1][1]:.3f} cx={k[0][2]:.3f} cy={k[1][2]:.3f}")
        print(f"  scenes: {', '.join(s['scenes'])}")
        for name, desc in s["datasets"].items():
            print(f"  {name:<11} {desc}")
        _table("views per room", s["per_room"], s["samples"])
    elif "triangles" in s:
        print(f"  {s['triangles']} triangles, {s['vertices']} vertices, {s['objects']} objects")
        print(f"  {s['materials']} materials ({s['textured_materials']} textured)")
        print(f"  bounds {s['bounds_min']} .. {s['bounds_max']} m (Y up)")
        print(f"  rooms: {', '.join(s['rooms']) if s['rooms'] else 'none (no .rooms.json sidecar)'}")
    else:
        print(f"  navigable area {s['navigable_area_m2']} m^2 in {s['cells']} cells of {s['cell_size']} m (grid {s['grid']})")


def _table(title: str, counts: dict[str, int], total: int) -> None:
    print(f"  {title}:")
    width = max((len(k) for k in counts), default=0)
    for name, count in counts.items():
        print(f"    {name:<{width}}  {count:>8}  {100.0 * count / max(total, 1):5.1f}%")
