"""Habitat scene datasets read without habitat-sim: ``*.scene_dataset_config.json``, stage configs, folders.

A Habitat *scene dataset* names its stages (the static scan meshes) through
``stages.paths`` (globs relative to the config, by file extension: ``.json`` for ``*.stage_config.json``
files or folders of them, ``.glb``/``.ply``/... for meshes used directly), ``stages.configs`` (stages
defined inline) and ``stages.default_attributes``; scenes (``scene_instances``) pick a stage, a navmesh
(``navmesh_instances`` handle) and a semantic descriptor (``semantic_scene_descriptor_instances`` handle).
A stage's ``up`` and ``front`` vectors give the asset's frame: the asset's up becomes world +Y and its front
world -Z (habitat-sim's ``CoordinateFrame``). Without them a ``.glb`` is taken as Z-up with front +Y (the
Matterport convention habitat-sim assumes for ``.glb``) and other files as Y-up; HM3D's ``.basis.glb``
files are Y-up (its configs say so). A scene instance's objects and articulated objects are composed onto its
stage by :mod:`envsim.scenes.compose`.

Folders without a config are searched for the layouts the public downloads use (MP3D ``<id>/<id>.glb``,
HM3D ``<split>/<nnnnn-id>/<id>.basis.glb``, Gibson ``<name>.glb``, Replica ``<name>/habitat/mesh_semantic.ply``)
and each mesh's navmesh and annotation files are found next to it by name.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from envsim.scenes.scene import MESH_SUFFIXES, SceneError

if TYPE_CHECKING:
    from envsim.scenes.compose import Composition

log = logging.getLogger(__name__)

CONFIG_SUFFIX = ".scene_dataset_config.json"
STAGE_SUFFIX = ".stage_config.json"
INSTANCE_SUFFIX = ".scene_instance.json"

FAMILIES = ("mp3d", "hm3d", "replica", "gibson", "habitat")
"""Dataset families; each has its own table in ``data_manifests/room_labels.toml``."""

_Y_UP = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
_Z_UP = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0))
_GENERIC_STEMS = {"mesh", "mesh_semantic", "replica_stage", "stage", "habitat"}


class HabitatError(SceneError):
    """A scene dataset config, stage config or folder that cannot be used."""


@dataclass(frozen=True)
class Stage:
    """One scene of a Habitat dataset: its mesh, frame and the files that annotate it.

    Attributes:
        name: scene name (the mesh stem without ``.basis``; the folder name for generic stems).
        render_asset: the mesh file to render.
        up: the asset's up direction, in asset coordinates.
        front: the asset's forward direction, in asset coordinates (orthogonal to ``up``).
        scale: per-axis scale along the world axes, applied after the frame rotation (as habitat-sim does).
        semantic_asset: mesh with per-face or per-texel instance ids ('' when none).
        navmesh: Detour ``.navmesh`` file ('' when none: the navigable space is computed from the mesh).
        descriptor: semantic descriptor (MP3D ``.house``, HM3D ``.semantic.txt``, Replica
            ``info_semantic.json``, Habitat ``.semantic_config.json``), '' when none.
        family: which room-label table applies (one of :data:`FAMILIES`).
        shader_type: the stage config's Habitat ``shader_type`` ("flat" marks its materials unlit), '' unset.
        composition: the scene instance's rigid and articulated objects (:mod:`envsim.scenes.compose`), or None.
    """

    name: str
    render_asset: str
    up: tuple[float, float, float] = _Y_UP[0]
    front: tuple[float, float, float] = _Y_UP[1]
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    semantic_asset: str = ""
    navmesh: str = ""
    descriptor: str = ""
    family: str = "habitat"
    shader_type: str = ""
    composition: Composition | None = None

    def files(self) -> list[str]:
        """Every file the stage reads (for checksums), mesh first, then the composed objects' configs and assets."""
        own = [f for f in (self.render_asset, self.semantic_asset, self.navmesh, self.descriptor) if f]
        return own + [f for f in self.composition.files() if f not in own] if self.composition else own


def frame_rotation(up, front) -> np.ndarray:
    """Rotation taking asset coordinates to the world: ``up`` -> +Y, ``front`` -> -Z.

    Args:
        up: (3,) asset up direction (any length).
        front: (3,) asset forward direction, orthogonal to ``up``.

    Returns:
        float64 (3, 3) proper rotation ``R``; world = ``R @ asset``.

    Raises:
        ValueError: zero-length or non-orthogonal vectors.
    """
    u = np.asarray(up, dtype=np.float64).reshape(3)
    f = np.asarray(front, dtype=np.float64).reshape(3)
    nu, nf = np.linalg.norm(u), np.linalg.norm(f)
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(f))) or nu < 1e-9 or nf < 1e-9:
        raise ValueError(f"up {u.tolist()} and front {f.tolist()} must be finite non-zero 3-vectors")
    u, f = u / nu, f / nf
    if abs(float(u @ f)) > 1e-4:
        raise ValueError(f"up {u.tolist()} and front {f.tolist()} must be orthogonal")
    right = np.cross(f, u)
    return np.stack([right, u, -f])


def is_scene_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a scene dataset config or a folder holding one."""
    p = Path(path)
    if p.is_file():
        return p.name.endswith(CONFIG_SUFFIX)
    return p.is_dir() and any(p.glob("*" + CONFIG_SUFFIX))


def read_scene_dataset(path: str | Path) -> list[Stage]:
    """The scenes of a Habitat scene dataset.

    Args:
        path: a ``*.scene_dataset_config.json`` file, or a folder: its config when it holds one (several:
            all of them, in name order), else the meshes found in it (see the module docstring).

    Returns:
        Stages sorted by name; one per scene instance when the config lists scene instances, else one
        per stage.

    Raises:
        HabitatError: unreadable JSON, a section of the wrong type, globs that match nothing, a referenced
            file that is missing, bad up/front vectors.
    """
    p = Path(path)
    if p.is_dir():
        configs = sorted(p.glob("*" + CONFIG_SUFFIX))
        if not configs:
            return discover_folder(p)
        return [s for c in configs for s in _read_config(c)]
    if not p.is_file():
        raise HabitatError(f"scene dataset not found: {p}")
    if not p.name.endswith(CONFIG_SUFFIX):
        raise HabitatError(f"{p.name}: a scene dataset config must be named <dataset>{CONFIG_SUFFIX}")
    return _read_config(p)


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object file; HabitatError naming ``what`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise HabitatError(f"{what} not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HabitatError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise HabitatError(f"{path.name}: expected a JSON object at the top level")
    return data


def _section(data: dict, key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise HabitatError(f"{path.name}: {key!r} must be a JSON object")
    return value


def _family_of(path: Path) -> str:
    low = path.name.lower()
    for fam in FAMILIES[:-1]:
        if fam in low:
            return fam
    return "habitat"


def vec3(value: Any, key: str, where: str) -> tuple[float, float, float]:
    """``value`` as 3 finite floats; HabitatError naming ``key`` and ``where`` otherwise."""
    try:
        v = tuple(float(x) for x in value)
    except (TypeError, ValueError) as exc:
        raise HabitatError(f"{where}: {key!r} must be a list of 3 numbers, got {value!r}") from exc
    if len(v) != 3 or not all(np.isfinite(v)):
        raise HabitatError(f"{where}: {key!r} must be a list of 3 finite numbers, got {value!r}")
    return v  # type: ignore[return-value]


def _apply_attributes(stage: Stage, attrs: dict[str, Any], base: Path, where: str) -> Stage:
    """A stage with the stage-config keys in ``attrs`` applied (paths relative to ``base``)."""
    changes: dict[str, Any] = {}
    for key, field_name in (("render_asset", "render_asset"), ("semantic_asset", "semantic_asset"),
                            ("nav_asset", "navmesh"), ("semantic_descriptor_filename", "descriptor"),
                            ("house_filename", "descriptor")):
        value = attrs.get(key)
        if isinstance(value, str) and value:
            changes[field_name] = str((base / value).resolve()) if not Path(value).is_absolute() else value
    for key in ("up", "front"):
        if key in attrs:
            changes[key] = vec3(attrs[key], key, where)
    if "scale" in attrs:
        changes["scale"] = vec3(attrs["scale"], "scale", where)
    if {"shader_type", "force_flat_shading", "requires_lighting"} & set(attrs):
        changes["shader_type"] = shader_type_of(attrs, stage.shader_type)
    return replace(stage, **changes)


def shader_type_of(attrs: dict[str, Any], default: str = "") -> str:
    """Habitat's shader of a stage or object config or instance: ``shader_type`` ("material", "flat", "phong",
    "pbr") in lower case, "flat" for ``"force_flat_shading": true`` or the legacy ``"requires_lighting": false``,
    ``default`` when none says."""
    if attrs.get("force_flat_shading") is True or attrs.get("requires_lighting") is False:
        return "flat"
    value = attrs.get("shader_type")
    value = value.strip().lower() if isinstance(value, str) else ""
    return default if value in ("", "unspecified") else value


def _default_stage(render_asset: Path, family: str) -> Stage:
    up, front = _Z_UP if render_asset.suffix.lower() == ".glb" else _Y_UP
    return Stage(name=_scene_name(render_asset), render_asset=str(render_asset.resolve()), up=up, front=front,
                 family=family)


def _scene_name(mesh: Path) -> str:
    stem = mesh.name
    for suffix in (".basis.glb", ".glb", ".gltf", ".ply", ".obj", STAGE_SUFFIX):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if stem in _GENERIC_STEMS:
        parent = mesh.parent
        if parent.name == "habitat":
            parent = parent.parent
        return parent.name or stem
    return stem


def glob_paths(base: Path, pattern: str) -> list[Path]:
    """The paths a config glob names, relative to ``base`` unless absolute; a plain path as it is."""
    if Path(pattern).is_absolute():
        root, pat = Path(pattern).anchor, str(Path(pattern).relative_to(Path(pattern).anchor))
        return sorted(Path(root).glob(pat))
    return sorted(base.glob(pattern)) if any(c in pattern for c in "*?[") else [base / pattern]


def _read_config(path: Path) -> list[Stage]:
    data = load_json(path, "scene dataset config")
    base = path.parent
    family = _family_of(path)
    stages_sec = _section(data, "stages", path)
    defaults = stages_sec.get("default_attributes", {})
    if not isinstance(defaults, dict):
        raise HabitatError(f"{path.name}: stages.default_attributes must be a JSON object")
    paths = stages_sec.get("paths", {})
    if not isinstance(paths, dict):
        raise HabitatError(f"{path.name}: stages.paths must map file extensions to lists of globs")

    handles: dict[str, Stage] = {}

    def add(handle: str, stage: Stage) -> None:
        handles[handle] = stage

    for ext, patterns in paths.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(x, str) for x in patterns):
            raise HabitatError(f"{path.name}: stages.paths[{ext!r}] must be a list of globs")
        for pattern in patterns:
            matches = [m for m in glob_paths(base, pattern) if m.exists()]
            found = 0
            for m in matches:
                if ext == ".json":
                    files = sorted(m.glob("*" + STAGE_SUFFIX)) if m.is_dir() else [m]
                    for f in files:
                        stage = _stage_from_file(f, defaults, family)
                        add(str(f.relative_to(base)) if f.is_relative_to(base) else str(f), stage)
                        found += 1
                elif m.is_file() and m.name.lower().endswith(ext.lower()):
                    stage = _apply_attributes(_default_stage(m, family), defaults, base, path.name)
                    stage = _with_neighbours(stage)
                    add(str(m.relative_to(base)), stage)
                    found += 1
            if not found:
                raise HabitatError(f"{path.name}: stages.paths[{ext!r}] glob {pattern!r} matches no file under {base}")
    configs = stages_sec.get("configs", [])
    if not isinstance(configs, list):
        raise HabitatError(f"{path.name}: stages.configs must be a list")
    for i, entry in enumerate(configs):
        where = f"{path.name}: stages.configs[{i}]"
        if not isinstance(entry, dict):
            raise HabitatError(f"{where} must be a JSON object")
        attrs = entry.get("attributes", {})
        if not isinstance(attrs, dict):
            raise HabitatError(f"{where}.attributes must be a JSON object")
        if entry.get("original_file"):
            stage = _stage_from_file(base / str(entry["original_file"]), defaults, family)
            stage = _apply_attributes(stage, attrs, base, where)
        elif attrs.get("render_asset"):
            stage = _apply_attributes(_default_stage(base / str(attrs["render_asset"]), family), defaults, base, where)
            stage = _with_neighbours(_apply_attributes(stage, attrs, base, where))
        else:
            raise HabitatError(f"{where} needs an original_file or attributes.render_asset")
        add(str(entry.get("template_handle") or stage.name), stage)

    navmeshes = _named_files(data, "navmesh_instances", base, path)
    descriptors = _named_files(data, "semantic_scene_descriptor_instances", base, path)
    stages = _scene_instances(data, base, path, handles, navmeshes, descriptors)
    if not stages:
        if not handles:
            raise HabitatError(f"{path.name} names no stages (stages.paths / stages.configs are empty)")
        stages = list(handles.values())
    for s in stages:
        _check_files(s, path.name)
    return sorted(stages, key=lambda s: s.name)


def _stage_from_file(path: Path, defaults: dict[str, Any], family: str) -> Stage:
    attrs = load_json(path, "stage config")
    asset = attrs.get("render_asset")
    if not isinstance(asset, str) or not asset:
        raise HabitatError(f"{path.name}: a stage config needs a \"render_asset\"")
    render = (path.parent / asset).resolve()
    stage = _default_stage(render, family)
    stage = _apply_attributes(stage, defaults, path.parent, path.name)
    stage = _apply_attributes(stage, attrs, path.parent, path.name)
    if render.stem in _GENERIC_STEMS:  # e.g. Replica's mesh.ply: name the scene after the stage config
        stage = replace(stage, name=_scene_name(path))
    return _with_neighbours(stage)


def _named_files(data: dict, key: str, base: Path, path: Path) -> dict[str, Path]:
    section = _section(data, key, path)
    out: dict[str, Path] = {}
    for handle, value in section.items():
        if handle == "paths":
            if not isinstance(value, dict):
                raise HabitatError(f"{path.name}: {key}.paths must map extensions to globs")
            for patterns in value.values():
                for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
                    for m in glob_paths(base, str(pattern)):
                        files = sorted(x for x in m.iterdir() if x.is_file()) if m.is_dir() else [m]
                        for f in files:
                            out[f.name] = f
                            out[f.stem] = f
        elif handle == "default_attributes":
            continue
        elif isinstance(value, str):
            out[handle] = base / value
        else:
            raise HabitatError(f"{path.name}: {key}[{handle!r}] must be a file path")
    return out


def _scene_instances(data, base, path, handles, navmeshes, descriptors) -> list[Stage]:
    from envsim.scenes.compose import Templates

    section = _section(data, "scene_instances", path)
    paths = section.get("paths", {})
    defaults = section.get("default_attributes") if isinstance(section.get("default_attributes"), dict) else {}
    files: list[Path] = []
    if isinstance(paths, dict):
        for patterns in paths.values():
            for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
                for m in glob_paths(base, str(pattern)):
                    files += sorted(m.glob("*" + INSTANCE_SUFFIX)) if m.is_dir() else [m] if m.is_file() else []
    stages = []
    templates = Templates(path, data) if files else None
    for f in files:
        inst = load_json(f, "scene instance")
        stage_inst = inst.get("stage_instance", {})
        template = stage_inst.get("template_name") if isinstance(stage_inst, dict) else None
        if not isinstance(template, str):
            raise HabitatError(f"{f.name}: needs \"stage_instance\": {{\"template_name\": ...}}")
        stage = _match_handle(template, handles)
        if stage is None:
            if template in ("NONE", ""):
                continue
            raise HabitatError(f"{f.name}: stage {template!r} is not defined in {path.name}")
        name = f.name[: -len(INSTANCE_SUFFIX)] if f.name.endswith(INSTANCE_SUFFIX) else f.stem
        stage = replace(stage, name=name)
        nav = inst.get("navmesh_instance")
        if isinstance(nav, str) and nav:
            if nav not in navmeshes:
                raise HabitatError(f"{f.name}: navmesh {nav!r} is not listed in {path.name} navmesh_instances")
            stage = replace(stage, navmesh=str(navmeshes[nav]))
        ssd = str(inst.get("semantic_scene_instance", defaults.get("semantic_scene_instance")) or "")
        ssd = ssd.replace("%%CONFIG_NAME_AS_ASSET_FILENAME%%", name)
        if ssd and ssd in descriptors:
            stage = replace(stage, descriptor=str(descriptors[ssd]))
        stages.append(templates.place(stage, inst, f.name))
    return stages


def _match_handle(template: str, handles: dict[str, Stage]) -> Stage | None:
    if template in handles:
        return handles[template]
    for handle, stage in handles.items():
        h = handle.removesuffix(STAGE_SUFFIX)
        if h == template or h.endswith("/" + template) or template.endswith("/" + Path(h).name) \
                or Path(h).name == Path(template).name or stage.name == template:
            return stage
    return None


def _check_files(stage: Stage, where: str) -> None:
    for f in stage.files():
        if not Path(f).is_file():
            raise HabitatError(f"{where}: scene {stage.name!r} refers to a missing file: {f}")
    if Path(stage.render_asset).suffix.lower() not in MESH_SUFFIXES:
        raise HabitatError(f"{where}: scene {stage.name!r}: unsupported mesh {Path(stage.render_asset).name}")
    try:
        frame_rotation(stage.up, stage.front)
    except ValueError as exc:
        raise HabitatError(f"{where}: scene {stage.name!r}: {exc}") from exc


def _with_neighbours(stage: Stage) -> Stage:
    """Fill navmesh, semantic mesh and descriptor from files next to the mesh, by the datasets' naming."""
    mesh = Path(stage.render_asset)
    folder = mesh.parent
    low = mesh.name.lower()
    stem = mesh.name[: -len(".basis.glb")] if low.endswith(".basis.glb") else mesh.stem
    if stem.endswith("_semantic"):
        stem = stem[: -len("_semantic")]
    changes: dict[str, str] = {}
    family = stage.family

    def first(*names: str) -> str:
        for n in names:
            if (folder / n).is_file():
                return str((folder / n).resolve())
        return ""

    if not stage.navmesh:
        changes["navmesh"] = first(mesh.name[: -len(mesh.suffix)] + ".navmesh", stem + ".basis.navmesh",
                                   stem + ".navmesh", "mesh_semantic.navmesh")
    if not stage.semantic_asset:
        changes["semantic_asset"] = first(stem + ".semantic.glb", stem + "_semantic.ply", "mesh_semantic.ply")
        if changes["semantic_asset"] and Path(changes["semantic_asset"]) == mesh.resolve():
            changes["semantic_asset"] = ""
    if not stage.descriptor:
        desc = first(stem + ".house", stem + ".semantic.txt", "info_semantic.json", stem + ".semantic_config.json")
        changes["descriptor"] = desc
    desc = changes.get("descriptor") or stage.descriptor
    if family == "habitat" and desc:
        family = {".house": "mp3d", ".txt": "hm3d"}.get(Path(desc).suffix, family)
        if Path(desc).name == "info_semantic.json":
            family = "replica"
    return replace(stage, family=family, **changes)


def discover_folder(folder: str | Path) -> list[Stage]:
    """Stages in a folder without a scene dataset config, by the public download layouts.

    ``*.basis.glb`` files are HM3D scenes (Y-up; their ``.semantic.glb`` is not a separate scene),
    ``*/habitat/mesh_semantic.ply`` Replica scenes (Z-up), other ``.glb`` files MP3D (with a ``.house``) or
    Gibson scenes (Z-up). Other meshes (``.ply``, ``.obj``, ``.gltf``) are Y-up.

    Raises:
        HabitatError: the folder holds no mesh.
    """
    folder = Path(folder)
    meshes = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    hm3d = [m for m in meshes if m.name.lower().endswith(".basis.glb")]
    replica = [m for m in meshes if m.name == "mesh_semantic.ply" and m.parent.name == "habitat"]
    stages: list[Stage] = []
    if hm3d:
        # HM3D GLBs are Y-up: habitat-sim's HM3D configs give every stage up [0,1,0], front [0,0,-1]
        stages = [_with_neighbours(replace(_default_stage(m, "hm3d"), up=_Y_UP[0], front=_Y_UP[1])) for m in hm3d]
    elif replica:
        for m in replica:
            render = m.parent.parent / "mesh.ply"
            stage = Stage(name=m.parent.parent.name, render_asset=str((render if render.is_file() else m).resolve()),
                          up=_Z_UP[0], front=_Z_UP[1], family="replica", semantic_asset=str(m.resolve()))
            stages.append(_with_neighbours(replace(stage, descriptor=_first_file(m.parent, "info_semantic.json"),
                                                   navmesh=_first_file(m.parent, "mesh_semantic.navmesh"))))
    else:
        skip = (".semantic.glb", "_semantic.ply")
        for m in meshes:
            if m.name.lower().endswith(skip):
                continue
            stage = _with_neighbours(_default_stage(m, "habitat"))
            if stage.family == "habitat" and m.suffix.lower() == ".glb":
                stage = replace(stage, family="gibson" if not stage.descriptor else stage.family)
            stages.append(stage)
    if not stages:
        raise HabitatError(f"folder {folder} holds no scene meshes ({', '.join(MESH_SUFFIXES)})")
    return sorted(stages, key=lambda s: s.name)


def _first_file(folder: Path, name: str) -> str:
    p = folder / name
    return str(p.resolve()) if p.is_file() else ""


def select(stages: list[Stage], patterns: list[str] | tuple[str, ...]) -> list[Stage]:
    """The stages whose name matches any of the shell-style patterns (all when none are given)."""
    if not patterns:
        return stages
    return [s for s in stages if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]


def looks_like_habitat(folder: str | Path) -> bool:
    """Whether a folder (without a config) is laid out like a Habitat download: it holds navmeshes,
    MP3D ``.house`` files, HM3D ``.basis.glb`` meshes or Replica ``habitat/`` folders."""
    folder = Path(folder)
    for pattern in ("*.navmesh", "*.house", "*.basis.glb", "habitat/mesh_semantic.ply"):
        if next(folder.glob(pattern), None) is not None or next(folder.glob("*/" + pattern), None) is not None:
            return True
    return any(next(folder.glob(f"*/*/{p}"), None) is not None for p in ("*.basis.glb", "*.navmesh"))
