"""What a render job is: its settings (:class:`DatasetConfig`), its scenes (:class:`SceneSource`,
:func:`resolve_sources`) and, for ``--poses``, the camera poses to render (:class:`PoseList`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envsim.camera import check_unit_quaternions
from envsim.nav.grid import NavConfig
from envsim.nav.trajectory import TrajectoryConfig
from envsim.provenance import file_sha256
from envsim.render.renderer import RenderConfig
from envsim.scenes.habitat import Stage, is_scene_dataset, looks_like_habitat, read_scene_dataset
from envsim.scenes.procedural import ProceduralConfig
from envsim.scenes.scene import MESH_SUFFIXES, UpAxis
from envsim.store.shards import Compression

PROCEDURAL_PREFIX = "procedural:"
MAX_PROCEDURAL = 10_000


class DatasetError(ValueError):
    """A render job that cannot run as asked (bad input, a folder holding another dataset)."""


@dataclass(frozen=True)
class SceneSource:
    """One scene to render.

    Attributes:
        name: unique scene name within the dataset.
        path: mesh file, or '' for a procedural house not generated yet.
        up: the asset's up axis.
        procedural: index of the procedural house, -1 for files.
        stage: the Habitat stage (frame, navmesh, annotations) when the scene comes from a Habitat
            scene dataset; ``up`` is then unused.
    """

    name: str
    path: str = ""
    up: UpAxis = UpAxis.Y
    procedural: int = -1
    stage: Stage | None = None


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that decides a dataset's bytes (besides the scenes and poses).

    Attributes:
        seed: dataset seed; per-scene seeds derive from (seed, scene name).
        shard_size: views per shard file.
        depth_dtype: ``float32`` or ``float16``.
        compression: image compression in the shards.
        render: renderer settings.
        navigation: navigable-space settings.
        trajectory: agent settings (``views`` per scene).
        procedural: procedural house settings.
        light_variants: render every pose this many times under different lights (consecutive views,
            same pose, ``render.lighting.jitter`` required): extra positives for the ESS lighting
            augmentation.
    """

    seed: int = 0
    shard_size: int = 1000
    depth_dtype: str = "float32"
    compression: Compression = Compression.LZF
    render: RenderConfig = field(default_factory=RenderConfig)
    navigation: NavConfig = field(default_factory=NavConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    procedural: ProceduralConfig = field(default_factory=ProceduralConfig)
    light_variants: int = 1

    def __post_init__(self) -> None:
        if self.light_variants < 1:
            raise ValueError(f"--light-variants must be >= 1, got {self.light_variants}")
        if self.light_variants > 1 and not self.render.lighting.jitter:
            raise ValueError("--light-variants > 1 needs per-view lighting (--light-jitter)")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {self.seed}")
        if self.shard_size < 1:
            raise ValueError(f"--shard-size must be >= 1, got {self.shard_size}")
        if self.depth_dtype not in ("float32", "float16"):
            raise ValueError(f"depth dtype must be float32 or float16, got {self.depth_dtype!r}")


def resolve_sources(specs: Sequence[str], *, up: UpAxis = UpAxis.Y) -> list[SceneSource]:
    """Turn command-line scene arguments into named sources.

    Args:
        specs: mesh files, folders of mesh files (searched recursively), Habitat scene datasets (a
            ``*.scene_dataset_config.json`` or a folder in one of the Habitat download layouts, see
            :mod:`envsim.scenes.habitat`), or ``procedural:N``.
        up: up axis of the mesh files (Habitat scenes take theirs from the dataset).

    Raises:
        DatasetError: a spec names nothing usable.
    """
    sources: list[SceneSource] = []
    for spec in specs:
        if spec.startswith(PROCEDURAL_PREFIX):
            count = spec[len(PROCEDURAL_PREFIX) :]
            if not count.isdigit() or not 1 <= int(count) <= MAX_PROCEDURAL:
                raise DatasetError(f"{spec!r}: write procedural:N with N between 1 and {MAX_PROCEDURAL}")
            start = sum(1 for s in sources if s.procedural >= 0)
            sources += [SceneSource(name=f"house-{i:04d}", procedural=i) for i in range(start, start + int(count))]
            continue
        path = Path(spec)
        if is_scene_dataset(path) or (path.is_dir() and looks_like_habitat(path)):
            sources += [SceneSource(name=s.name, path=s.render_asset, stage=s) for s in read_scene_dataset(path)]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
            if not files:
                raise DatasetError(f"folder {spec} holds no mesh files ({', '.join(MESH_SUFFIXES)})")
            sources += [SceneSource(name=p.stem, path=str(p), up=up) for p in files]
        elif path.is_file():
            if path.suffix.lower() not in MESH_SUFFIXES:
                raise DatasetError(f"{spec}: unsupported scene file; use {', '.join(MESH_SUFFIXES)} or procedural:N")
            sources.append(SceneSource(name=path.stem, path=str(path), up=up))
        else:
            raise DatasetError(f"scene not found: {spec}")
    if not sources:
        raise DatasetError("no scenes given")
    seen: dict[str, int] = {}
    unique = []
    for s in sources:  # keep names unique: a second 'mesh' becomes 'mesh-1'
        n = seen.get(s.name, 0)
        seen[s.name] = n + 1
        unique.append(s if n == 0 else dataclasses.replace(s, name=f"{s.name}-{n}"))
    return unique


@dataclass(frozen=True)
class PoseList:
    """Camera poses given by the user (``--poses``), rendered in every scene.

    Attributes:
        position: float64 (N, 3) camera centres, Y-up world, metres.
        rotation: float64 (N, 4) unit quaternions (w, x, y, z), camera-to-world.
        sha256: digest of the source file.
    """

    position: np.ndarray
    rotation: np.ndarray
    sha256: str


def load_poses(path: str | Path) -> PoseList:
    """Read ``[{"position": [x, y, z], "rotation": [w, x, y, z]}, ...]`` (camera-to-world, Y-up world).

    Raises:
        DatasetError: missing file, bad JSON, missing keys, non-finite values or non-unit quaternions.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"poses file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise DatasetError(f"{path.name} must hold a non-empty JSON list of poses")
    pos, rot = [], []
    for i, item in enumerate(data):
        try:
            p = np.asarray(item["position"], dtype=np.float64)
            q = np.asarray(item["rotation"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(
                f"{path.name}: pose {i} needs \"position\": [x, y, z] and \"rotation\": [w, x, y, z]"
            ) from exc
        if p.shape != (3,) or q.shape != (4,) or not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            raise DatasetError(f"{path.name}: pose {i} needs 3 finite position and 4 finite rotation values")
        pos.append(p)
        rot.append(q)
    rotation = np.stack(rot)
    try:
        check_unit_quaternions(rotation)
    except ValueError as exc:
        raise DatasetError(f"{path.name}: {exc}") from exc
    rotation /= np.linalg.norm(rotation, axis=1, keepdims=True)
    return PoseList(position=np.stack(pos), rotation=rotation, sha256=file_sha256(path))
