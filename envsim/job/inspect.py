"""Summaries of a dataset folder, a shard, a scene file or a saved navigable grid (``ess inspect``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from envsim.store.shards import MANIFEST_NAME, read_manifest, read_shard


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
        raise ValueError(f"{folder} is not a dataset folder (no readable {MANIFEST_NAME}): {exc}") from exc
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
    return {
        "path": str(folder),
        "complete": manifest.get("complete", False),
        "views": int(sum(scenes.values())),
        "planned_views": manifest["total_samples"],
        "shards": len(shards),
        "width": manifest["width"],
        "height": manifest["height"],
        "hfov_deg": cfg["render"]["hfov_deg"],
        "shading": cfg["render"].get("shading", "lit"),  # datasets written before shading was a setting: lit
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


def summarise_mesh(path: Path, up: str) -> dict[str, Any]:
    from envsim.scenes.load import load_scene
    from envsim.scenes.scene import UpAxis

    scene = load_scene(path, up=UpAxis(up))
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
    from envsim.nav.grid import NavGrid

    nav = NavGrid.load(path)
    return {
        "path": str(path),
        "cells": int(nav.walkable.sum()),
        "grid": list(nav.walkable.shape),
        "cell_size": nav.cell_size,
        "navigable_area_m2": round(float(nav.area_m2), 3),
    }


def summarise_navmesh(path: Path) -> dict[str, Any]:
    from envsim.nav.navmesh import read_navmesh

    nm = read_navmesh(path)
    n_islands, _ = nm.islands()
    areas = sorted((float(a) for a in nm.island_areas()), reverse=True)
    v = nm.vertices
    return {
        "path": str(path),
        "navmesh_polygons": int(nm.n_polygons),
        "islands": int(n_islands),
        "navigable_area_m2": round(float(nm.area_m2), 3),
        "island_areas_m2": [round(a, 3) for a in areas],
        "bounds_min": np.round(v.min(axis=0), 3).tolist() if len(v) else [],
        "bounds_max": np.round(v.max(axis=0), 3).tolist() if len(v) else [],
        "settings": dict(nm.settings),
    }


def summarise_scene_dataset(path: Path) -> dict[str, Any]:
    from envsim.scenes.habitat import read_scene_dataset

    stages = read_scene_dataset(path)
    return {
        "path": str(path),
        "habitat_scenes": [
            {"name": s.name, "family": s.family, "mesh": s.render_asset, "up": list(s.up), "front": list(s.front),
             "navmesh": s.navmesh, "semantic_mesh": s.semantic_asset, "descriptor": s.descriptor}
            for s in stages
        ],
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


def summarise(path: str | Path, *, up: str = "y") -> dict[str, Any]:
    """The summary of whatever ``path`` is (dataset folder, ``.h5`` shard, ``.npz`` grid or mesh file).

    Raises:
        ValueError: missing path or a kind of file that cannot be inspected.
        OSError: unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"not found: {path}")
    suffix = path.suffix.lower()
    from envsim.scenes.habitat import is_scene_dataset, looks_like_habitat

    if path.is_dir() and not (path / "manifest.json").is_file() and (is_scene_dataset(path) or looks_like_habitat(path)):
        return summarise_scene_dataset(path)
    if path.is_dir():
        return summarise_dataset(path)
    if path.name.endswith(".scene_dataset_config.json"):
        return summarise_scene_dataset(path)
    if suffix == ".navmesh":
        return summarise_navmesh(path)
    if suffix == ".h5":
        return summarise_shard(path)
    if suffix == ".npz":
        return summarise_nav(path)
    if suffix in (".glb", ".gltf", ".ply", ".obj"):
        return summarise_mesh(path, up)
    raise ValueError(
        f"cannot inspect {path.name}: give a dataset folder, a shard, a mesh, a .navmesh, a scene dataset "
        "config or a nav .npz"
    )


def format_summary(s: dict[str, Any]) -> str:
    """A summary from :func:`summarise` as readable text lines."""
    out = [s["path"]]
    add = out.append
    if "planned_views" in s:
        state = "complete" if s["complete"] else f"INCOMPLETE ({s['views']} of {s['planned_views']} views)"
        add(f"  {s['views']} views in {s['shards']} shard(s), {state}")
        add(f"  resolution {s['width']}x{s['height']}, hfov {s['hfov_deg']} deg, depth {s['depth_dtype']}, compression {s['compression']}, shading {s['shading']}")
        k = s["K"]
        add(f"  K: fx={k[0][0]:.3f} fy={k[1][1]:.3f} cx={k[0][2]:.3f} cy={k[1][2]:.3f}")
        add(f"  disk: {_size(s['disk_bytes'])} ({_size(s['shard_bytes'])} in shards)")
        add(f"  seed {s['seed']}, code {s['code_version']}")
        out += _table("views per scene", s["per_scene"], s["views"])
        out += _table("views per room (camera position)", s["per_room"], s["views"])
    elif "samples" in s:
        add(f"  {s['samples']} samples, {s['width']}x{s['height']}, format {s['format_version']}, {_size(s['disk_bytes'])}")
        k = s["K"]
        add(f"  K: fx={k[0][0]:.3f} fy={k[1][1]:.3f} cx={k[0][2]:.3f} cy={k[1][2]:.3f}")
        add(f"  scenes: {', '.join(s['scenes'])}")
        for name, desc in s["datasets"].items():
            add(f"  {name:<11} {desc}")
        out += _table("views per room", s["per_room"], s["samples"])
    elif "triangles" in s:
        add(f"  {s['triangles']} triangles, {s['vertices']} vertices, {s['objects']} objects")
        add(f"  {s['materials']} materials ({s['textured_materials']} textured)")
        add(f"  bounds {s['bounds_min']} .. {s['bounds_max']} m (Y up)")
        add(f"  rooms: {', '.join(s['rooms']) if s['rooms'] else 'none (no .rooms.json sidecar)'}")
    elif "navmesh_polygons" in s:
        add(f"  {s['navmesh_polygons']} polygons, {s['islands']} island(s), navigable area {s['navigable_area_m2']} m^2")
        add(f"  island areas (m^2): {', '.join(str(a) for a in s['island_areas_m2'][:10])}"
            + (" ..." if len(s["island_areas_m2"]) > 10 else ""))
        add(f"  bounds {s['bounds_min']} .. {s['bounds_max']} m (Y up)")
        if s["settings"]:
            add("  settings: " + ", ".join(f"{k}={v}" for k, v in s["settings"].items()))
    elif "habitat_scenes" in s:
        add(f"  {len(s['habitat_scenes'])} scene(s)")
        for sc in s["habitat_scenes"]:
            extras = [k for k in ("navmesh", "semantic_mesh", "descriptor") if sc[k]]
            add(f"    {sc['name']:<24} {sc['family']:<8} up {sc['up']} front {sc['front']}  + {', '.join(extras) or 'mesh only'}")
    else:
        add(f"  navigable area {s['navigable_area_m2']} m^2 in {s['cells']} cells of {s['cell_size']} m (grid {s['grid']})")
    return "\n".join(out)


def _table(title: str, counts: dict[str, int], total: int) -> list[str]:
    width = max((len(k) for k in counts), default=0)
    return [f"  {title}:"] + [
        f"    {name:<{width}}  {count:>8}  {100.0 * count / max(total, 1):5.1f}%" for name, count in counts.items()
    ]
