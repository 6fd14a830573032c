"""Check every shard of a dataset against its manifest (``ess verify``).

Checks, per shard: the file exists and its SHA-256 matches the manifest; the sample count; the schema
(datasets, dtypes, shapes, attributes); no NaN or infinite depth or pose; depth within [0, max_depth];
poses are rigid (orthonormal rotation with determinant 1, last row 0 0 0 1) and agree with
``position``/``rotation``; scene and room indices in range. Exits non-zero naming every bad shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from envsim.camera import quat_to_matrix
from envsim.provenance import file_sha256
from envsim.store.shards import FORMAT_VERSION, read_manifest

IMAGE_KEYS = {"rgb": ("uint8", 3), "depth": (("float32", "float16"), 2)}
META_KEYS = {"pose": (4, 4), "position": (3,), "rotation": (4,), "light": (5,), "scene": (), "trajectory": (), "step": (), "room": ()}


def verify_shard(path: Path, entry: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Problems found in one shard (empty when it is good)."""
    import h5py

    if not path.is_file():
        return ["missing"]
    problems: list[str] = []
    checksum_ok = file_sha256(path) == entry["sha256"]
    try:
        with h5py.File(path, "r") as f:
            n = entry["samples"]
            h, w = manifest["height"], manifest["width"]
            for key, (dtypes, _) in IMAGE_KEYS.items():
                if key not in f:
                    problems.append(f"no {key} dataset")
                    continue
                shape = (n, h, w, 3) if key == "rgb" else (n, h, w)
                if f[key].shape != shape:
                    problems.append(f"{key} has shape {f[key].shape}, expected {shape}")
                if f[key].dtype.name not in np.atleast_1d(dtypes):
                    problems.append(f"{key} has dtype {f[key].dtype}")
            for key, tail in META_KEYS.items():
                if key not in f or f[key].shape != (n, *tail):
                    problems.append(f"{key} missing or not of shape {(n, *tail)}")
            if problems:
                return problems if checksum_ok else ["SHA-256 differs from the manifest (modified or corrupt)", *problems]
            if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
                problems.append(f"format_version {f.attrs.get('format_version')} is not {FORMAT_VERSION}")
            max_depth = float(manifest["config"]["render"]["max_depth"])
            for i in range(0, n, 256):  # chunks of views: bounded memory
                d = np.asarray(f["depth"][i : i + 256], np.float32)
                if not np.all(np.isfinite(d)):
                    problems.append(f"non-finite depth in views {i}..{i + len(d) - 1}")
                    break
                if d.min() < 0 or d.max() > max_depth * 1.001:
                    problems.append(f"depth outside [0, {max_depth}] m in views {i}..{i + len(d) - 1}")
                    break
            pose = f["pose"][()].astype(np.float64)
            position, rotation = f["position"][()], f["rotation"][()]
            if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(position)) and np.all(np.isfinite(rotation))):
                problems.append("non-finite pose, position or rotation")
            else:
                r = pose[:, :3, :3]
                ortho = np.abs(r @ np.swapaxes(r, 1, 2) - np.eye(3)).max() if n else 0.0
                if ortho > 1e-4 or (n and np.abs(np.linalg.det(r) - 1).max() > 1e-4):
                    problems.append("pose rotations are not orthonormal with determinant 1")
                if n and not np.allclose(pose[:, 3], [0, 0, 0, 1]):
                    problems.append("pose last rows are not [0, 0, 0, 1]")
                if n and (np.abs(pose[:, :3, 3] - position).max() > 1e-4
                          or np.abs(quat_to_matrix(rotation) - r).max() > 1e-3):
                    problems.append("pose disagrees with position/rotation")
            scene, room = f["scene"][()], f["room"][()]
            if n and (scene.min() < 0 or scene.max() >= len(manifest["scene_names"])):
                problems.append("scene index out of range")
            if n and (room.min() < -1 or room.max() >= len(manifest["room_names"])):
                problems.append("room index out of range")
    except (OSError, RuntimeError, KeyError, ValueError) as exc:  # h5py reports corruption in several ways
        problems.append(f"unreadable HDF5: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    return problems if checksum_ok else ["SHA-256 differs from the manifest (modified or corrupt)", *problems]


def verify_dataset(folder: str | Path) -> dict[str, list[str]]:
    """Problems per shard file of a dataset folder (only bad shards appear; '' for dataset-level ones).

    Raises:
        ValueError: not a dataset folder.
    """
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder} is not a dataset folder: {exc}") from exc
    bad: dict[str, list[str]] = {}
    total = 0
    for entry in manifest.get("shards", []):
        total += entry["samples"]
        problems = verify_shard(folder / entry["file"], entry, manifest)
        if problems:
            bad[entry["file"]] = problems
    if manifest.get("complete") and total != manifest.get("total_samples"):
        bad[""] = [f"shards hold {total} views, the manifest promises {manifest.get('total_samples')}"]
    elif not manifest.get("complete"):
        bad[""] = ["the render job has not finished (rerun its `ess render` command)"]
    return bad
