"""Composing a Habitat scene instance: its stage plus its rigid and articulated objects, in the Y-up world.

A scene dataset config names object templates under ``objects`` (``paths``: globs by extension, ``.json`` for
``*.object_config.json`` files or folders of them, a mesh extension for meshes used as templates directly;
``configs``: templates given inline or by ``original_file`` + ``attributes``; ``default_attributes`` under
both) and articulated objects under ``articulated_objects`` (``.urdf`` files or folders of them, or
``*.ao_config.json`` files naming one by ``urdf_filepath``). A scene instance's ``object_instances`` and
``articulated_object_instances`` name a template by ``template_name``; as in habitat-sim
(``getFullAttrNameFromStr``) it is the exact handle, else a handle containing the name; here a handle whose
file stem is the name's last component is tried before the substring.

A rigid object is placed as habitat-sim places it (``PhysicsManager::addObjectInstance``,
``RigidObject::finalizeObject``, ``RigidObject::resetStateFromSceneInstanceAttr``):

1. the asset is turned by its config's ``up``/``front`` (:func:`~envsim.scenes.habitat.frame_rotation`);
2. scaled per axis by the config's ``scale`` x the instance's ``uniform_scale`` x ``non_uniform_scale``;
3. its centre of mass ``c`` becomes the object's origin: the config's ``COM`` (in the turned, unscaled frame)
   times the scale, or, without one, the centre of the bounding box of the turned, scaled mesh;
4. rotated by the instance's ``rotation`` (w, x, y, z) and moved by its ``translation``. With
   ``translation_origin`` ``asset_local`` (scene-wide, or per instance) the translation places the asset's own
   origin (habitat-sim adds the rotated COM shift back): ``world = R @ v + t``; with ``COM``, habitat-sim's
   default when neither says, it places the centre of mass: ``world = R @ (v - c) + t``.

A mirroring scale (an odd number of negative components) reverses every triangle's winding, so that normals
stay outward. Objects with ``"is_instance_visible": false`` are left out.

An articulated object is composed in its rest pose (every joint at 0): each link's frame is the chain of its
joints' ``<origin>`` from the root link, each ``<visual>`` mesh sits at its ``<origin>`` in its link with its
``scale``; the base goes where the instance's ``translation``, ``rotation`` and ``uniform_scale`` put it (no
COM correction: habitat-sim does none for articulated objects). Primitive visuals (box, cylinder, sphere) and
a skinned ``render_asset`` of an ``ao_config`` are not drawn.

Semantics: an object's faces carry its config's ``semantic_id`` in ``Scene.face_instance`` (-1 without one);
its name in ``Scene.object_names`` is the category of that id in the dataset's semantic lexicon
(``{"classes": [{"name", "id"}]}``: the scene's descriptor itself, the ``semantic_descriptor_filename`` of its
``*.semantic_config.json`` or of the config's ``semantic_scene_descriptor_instances.default_attributes``, else
a ``*lexicon*.json`` up to two folders below the dataset config), else its template name.
A ``"flat"`` ``shader_type`` (config or instance) marks the object's materials unlit.

A template that is missing, unreadable or whose asset file is missing is skipped with one warning per scene
naming every such template; it never fails the scene.
"""

from __future__ import annotations

import hashlib
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from envsim.camera import quat_to_matrix
from envsim.provenance import file_sha256
from envsim.scenes.habitat import (
    HabitatError,
    Stage,
    frame_rotation,
    glob_paths,
    load_json,
    shader_type_of,
    vec3,
)
from envsim.scenes.load import load_scene
from envsim.scenes.scene import MAX_INDEX, Scene, SceneError, UpAxis

log = logging.getLogger(__name__)

UNLIT_FAMILIES = ("mp3d", "hm3d", "gibson", "replica")
"""Scan families whose stages Habitat shows unlit when their config names no shader (textures and vertex colours
carry the captured lighting)."""

OBJECT_SUFFIX = ".object_config.json"
AO_SUFFIX = ".ao_config.json"
ORIGINS = ("asset_local", "com")
"""``translation_origin`` values (lower case): the asset's own origin, or its centre of mass."""

_Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class ObjectPlacement:
    """One rigid object of a scene instance: its template's asset and frame, and where the instance puts it.

    Attributes:
        template: the instance's ``template_name``.
        render_asset: the mesh file.
        config: the ``*.object_config.json`` ('' for a mesh listed as a template or an inline config).
        up: the asset's up direction, asset coordinates.
        front: the asset's forward direction, asset coordinates.
        scale: per-axis scale (config ``scale`` x ``uniform_scale`` x ``non_uniform_scale``); negative mirrors.
        com: the config's ``COM`` (turned, unscaled frame, metres), None: the bounding-box centre.
        translation: metres, world.
        rotation: unit quaternion (w, x, y, z), world.
        translation_origin: one of :data:`ORIGINS`: what ``translation`` places.
        semantic_id: the config's ``semantic_id``, -1 without one.
        category: the lexicon's name for ``semantic_id`` ('' when none).
        shader_type: Habitat ``shader_type`` ("flat" draws it unlit), '' unset.
        motion_type: ``STATIC``, ``KINEMATIC``, ``DYNAMIC`` or '' (recorded; every object is drawn at rest).
    """

    template: str
    render_asset: str
    config: str = ""
    up: _Vec3 = (0.0, 1.0, 0.0)
    front: _Vec3 = (0.0, 0.0, -1.0)
    scale: _Vec3 = (1.0, 1.0, 1.0)
    com: _Vec3 | None = None
    translation: _Vec3 = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    translation_origin: str = "com"
    semantic_id: int = -1
    category: str = ""
    shader_type: str = ""
    motion_type: str = ""

    @property
    def name(self) -> str:
        """The object's name in ``Scene.object_names``: its category, else its template name."""
        return self.category or self.template

    def files(self) -> tuple[str, ...]:
        """The files it reads: config (if any), then the mesh."""
        return tuple(f for f in (self.config, self.render_asset) if f)


@dataclass(frozen=True)
class ArticulatedPlacement:
    """One articulated object (URDF) of a scene instance, in its rest pose.

    Attributes:
        template: the instance's ``template_name``.
        urdf: the URDF file.
        visuals: (mesh file, row-major 4x4 from mesh coordinates to the base link's frame, mesh scale
            included) per visual mesh, in document order.
        config: the ``*.ao_config.json`` ('' when the template is the URDF itself).
        translation: metres, world.
        rotation: unit quaternion (w, x, y, z), world.
        uniform_scale: scale of the whole object.
        semantic_id: the config's ``semantic_id``, -1 without one.
        category: the lexicon's name for ``semantic_id`` ('' when none).
        shader_type: Habitat ``shader_type``, '' unset.
    """

    template: str
    urdf: str
    visuals: tuple[tuple[str, tuple[float, ...]], ...]
    config: str = ""
    translation: _Vec3 = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    uniform_scale: float = 1.0
    semantic_id: int = -1
    category: str = ""
    shader_type: str = ""

    name = ObjectPlacement.name

    def files(self) -> tuple[str, ...]:
        """The files it reads: config (if any), URDF, then the visual meshes."""
        return tuple(f for f in (self.config, self.urdf, *(m for m, _ in self.visuals)) if f)


@dataclass(frozen=True)
class Composition:
    """The objects a scene instance adds to its stage.

    Attributes:
        objects: rigid objects, in the instance's order (hidden and missing ones left out).
        articulated: articulated objects, in the instance's order.
        lexicon: the semantic lexicon the categories come from ('' when none).
    """

    objects: tuple[ObjectPlacement, ...] = ()
    articulated: tuple[ArticulatedPlacement, ...] = ()
    lexicon: str = ""

    def files(self) -> list[str]:
        """Every config, asset and lexicon file the objects read, each once, in order."""
        found = dict.fromkeys(f for p in (*self.objects, *self.articulated) for f in p.files())
        return list(found) + ([self.lexicon] if self.lexicon and self.lexicon not in found else [])


class Templates:
    """The object and articulated-object templates of one scene dataset config, by handle; each template's
    config is read on first use (HSSD lists some 18,000), and each lexicon once.

    Args:
        config: the ``*.scene_dataset_config.json`` file.
        data: its parsed JSON.

    Raises:
        HabitatError: an ``objects`` or ``articulated_objects`` section of the wrong type.
    """

    def __init__(self, config: Path, data: dict[str, Any]):
        self.config = config
        self.sources = {kind: _sources(data, kind, suffix, config)
                        for kind, suffix in (("objects", OBJECT_SUFFIX), ("articulated_objects", AO_SUFFIX))}
        ssd = data.get("semantic_scene_descriptor_instances", {})
        defaults = ssd.get("default_attributes", {}) if isinstance(ssd, dict) else {}
        self.lexicon_name = str(defaults.get("semantic_descriptor_filename") or "") if isinstance(defaults, dict) else ""
        self._stems: dict[str, dict[str, str]] = {}
        self._parsed: dict[tuple[str, str], Any] = {}
        self._lexicons: dict[str, dict[int, str]] = {}
        self._nearby: list[Path] | None = None

    def place(self, stage: Stage, instance: dict[str, Any], where: str) -> Stage:
        """The stage with the objects of one ``*.scene_instance.json`` (parsed) as its composition.

        Raises:
            HabitatError: an instance entry of the wrong type (a missing template or asset is only logged).
        """
        lexicon = self.lexicon_for(stage)
        classes = self.classes(lexicon)
        origin = _translation_origin(instance.get("translation_origin"), "com")
        missing: dict[str, str] = {}
        placed: dict[str, list] = {}
        for kind, key in (("objects", "object_instances"), ("articulated_objects", "articulated_object_instances")):
            placed[kind] = []
            for i, entry in enumerate(_entries(instance, key, where)):
                name = str(entry["template_name"])
                found = self.template(kind, name)
                if isinstance(found, str) or len(found) > 1:
                    missing[name] = found if isinstance(found, str) else found[1]
                if not isinstance(found, str) and entry.get("is_instance_visible", True) is not False:
                    placed[kind].append(_placed(found[0], entry, origin, classes, f"{where}: {key}[{i}]"))
        if missing:
            log.warning("scene %s: %d object template(s) skipped or incomplete: %s", stage.name, len(missing),
                        "; ".join(f"{k} ({v})" for k, v in missing.items()))
        if not (placed["objects"] or placed["articulated_objects"]):
            return stage
        composition = Composition(tuple(placed["objects"]), tuple(placed["articulated_objects"]), lexicon)
        return replace(stage, composition=composition)

    def template(self, kind: str, name: str) -> tuple | str:
        """The template ``name`` of ``kind`` ("objects" or "articulated_objects"): (placement with the instance
        fields unset, and a problem worth a warning if any), or the reason it cannot be used."""
        key = (kind, name)
        if key not in self._parsed:
            handle = self._match(kind, name)
            if handle is None:
                self._parsed[key] = f"not defined by {self.config.name} {kind}"
            elif kind == "objects":
                found = _object_template(handle, self.sources[kind][handle], self.config.parent)
                self._parsed[key] = found if isinstance(found, str) else (found,)
            else:
                self._parsed[key] = _articulated_template(handle, self.sources[kind][handle])
        return self._parsed[key]

    def _match(self, kind: str, name: str) -> str | None:
        handles = self.sources[kind]
        if name in handles:
            return name
        if kind not in self._stems:
            self._stems[kind] = {}
            for h in handles:
                self._stems[kind].setdefault(h.rsplit("/", 1)[-1].lower(), h)
        short = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
        for suffix in (OBJECT_SUFFIX, AO_SUFFIX, ".urdf", ".glb", ".gltf", ".ply", ".obj"):
            short = short.removesuffix(suffix)
        if short in self._stems[kind]:
            return self._stems[kind][short]
        return next((h for h in sorted(handles) if name.lower() in h.lower()), None)

    def lexicon_for(self, stage: Stage) -> str:
        """The semantic lexicon file of a scene ('' when none; see the module docstring)."""
        desc = Path(stage.descriptor) if stage.descriptor.endswith(".json") else None
        candidates = []
        if desc is not None:
            data = _json_or_none(desc)
            if isinstance(data, dict) and isinstance(data.get("classes"), list):
                return str(desc)
            name = data.get("semantic_descriptor_filename") if isinstance(data, dict) else None
            candidates += [desc.parent / str(n) for n in (name, self.lexicon_name) if n]
        base = self.config.parent
        candidates += [base / self.lexicon_name] if self.lexicon_name else []
        if self._nearby is None:  # e.g. HSSD semantics/hssd-hab_semantic_lexicon.json, ReplicaCAD configs/ssd/
            self._nearby = [c for level in ("", "*/", "*/*/") for c in sorted(base.glob(level + "*lexicon*.json"))]
        return next((str(c.resolve()) for c in [*candidates, *self._nearby] if c.is_file()), "")

    def classes(self, lexicon: str) -> dict[int, str]:
        """Semantic id -> category of a lexicon file ({} for '' or an unreadable one)."""
        if lexicon not in self._lexicons:
            data = _json_or_none(Path(lexicon)) if lexicon else None
            entries = data.get("classes", []) if isinstance(data, dict) else []
            table = {}
            for c in entries if isinstance(entries, list) else []:
                if isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str):
                    table[int(c["id"])] = c["name"]
            self._lexicons[lexicon] = table
        return self._lexicons[lexicon]


def _json_or_none(path: Path) -> Any:
    try:
        return load_json(path, "semantic descriptor")
    except HabitatError:
        return None


def _sources(data: dict[str, Any], kind: str, suffix: str, config: Path) -> dict[str, tuple]:
    """handle -> (file or None, default attributes, inline attributes) of one template section."""
    section = data.get(kind, {})
    if not isinstance(section, dict):
        raise HabitatError(f"{config.name}: {kind!r} must be a JSON object")
    defaults, paths, configs = (section.get(k, d) for k, d in (("default_attributes", {}), ("paths", {}), ("configs", [])))
    if not isinstance(defaults, dict) or not isinstance(paths, dict) or not isinstance(configs, list):
        raise HabitatError(f"{config.name}: {kind}.default_attributes and {kind}.paths must be JSON objects, "
                           f"{kind}.configs a list")
    base = config.parent
    out: dict[str, tuple] = {}
    for ext, patterns in paths.items():
        want = suffix if ext == ".json" else str(ext).lower()  # in a folder; a file named by a glob: its extension
        for pattern in [patterns] if isinstance(patterns, str) else list(patterns):
            for m in glob_paths(base, str(pattern)):
                files = sorted(x for x in m.iterdir() if x.name.lower().endswith(want)) if m.is_dir() else [m]
                for f in (f for f in files if f.is_file() and f.name.lower().endswith(str(ext).lower())):
                    out[_handle(f, base, want)] = (f, defaults, {})
    for i, entry in enumerate(configs):
        if not isinstance(entry, dict) or not isinstance(entry.get("attributes", {}), dict):
            raise HabitatError(f"{config.name}: {kind}.configs[{i}] must be an object with an \"attributes\" object")
        original = base / str(entry["original_file"]) if entry.get("original_file") else None
        handle = entry.get("template_handle") or (_handle(original, base, suffix) if original else f"{kind}[{i}]")
        out[str(handle)] = (original, defaults, entry.get("attributes", {}))
    return out


def _handle(path: Path, base: Path, suffix: str) -> str:
    """A template's handle: its path relative to the dataset config (or absolute), without ``suffix``."""
    text = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
    return text[: -len(suffix)] if text.lower().endswith(suffix) else text


def _object_template(handle: str, source: tuple, base: Path) -> ObjectPlacement | str:
    """An object config as a placement at the origin, or the reason it cannot be used."""
    file, defaults, inline = source
    is_config = file is not None and file.name.lower().endswith(".json")
    try:
        attrs = {**defaults, **(load_json(file, "object config") if is_config else {}), **inline}
        where = file.name if file is not None else handle
        folder = file.parent if is_config else base
        asset = attrs.get("render_asset") or attrs.get("collision_asset")
        if file is not None and not is_config:
            asset = str(file)
        if not isinstance(asset, str) or not asset:
            return f"{where} names no render_asset"
        up, front = (vec3(attrs.get(k, d), k, where) for k, d in (("up", (0, 1, 0)), ("front", (0, 0, -1))))
        frame_rotation(up, front)
        com = vec3(attrs["COM"], "COM", where) if "COM" in attrs else None
        semantic_id = attrs.get("semantic_id", -1)
        if isinstance(semantic_id, bool) or not isinstance(semantic_id, int):
            return f"{where}: semantic_id must be an integer, got {semantic_id!r}"
        path = (folder / asset).resolve()
        if not path.is_file():
            return f"render asset {path} not found"
        return ObjectPlacement(template=handle, render_asset=str(path), config=str(file.resolve()) if is_config else "",
                               up=up, front=front, scale=vec3(attrs.get("scale", (1, 1, 1)), "scale", where), com=com,
                               semantic_id=semantic_id, shader_type=shader_type_of(attrs))
    except (HabitatError, ValueError) as exc:
        return str(exc)


def _articulated_template(handle: str, source: tuple) -> tuple | str:
    """(placement at the origin, problem or nothing) of an articulated object, or the reason it cannot be used."""
    file, defaults, inline = source
    if file is None:
        return f"{handle}: an articulated object needs a URDF or an ao_config file"
    try:
        is_urdf = file.suffix.lower() == ".urdf"
        attrs = {**defaults, **({} if is_urdf else load_json(file, "articulated object config")), **inline}
        urdf = file if is_urdf else file.parent / str(attrs.get("urdf_filepath", ""))
        if not urdf.is_file():
            return f"URDF {urdf} not found"
        visuals = read_urdf_visuals(urdf)
    except HabitatError as exc:
        return str(exc)
    gone = [m for m, _ in visuals if not Path(m).is_file()]
    semantic_id = attrs.get("semantic_id", -1)
    placement = ArticulatedPlacement(
        template=handle, urdf=str(urdf.resolve()), config="" if is_urdf else str(file.resolve()),
        visuals=tuple((m, tuple(t.ravel().tolist())) for m, t in visuals if m not in gone),
        semantic_id=semantic_id if isinstance(semantic_id, int) and not isinstance(semantic_id, bool) else -1,
        shader_type=shader_type_of(attrs),
    )
    return (placement, f"{urdf.name}: visual mesh(es) not found: {', '.join(gone)}") if gone else (placement,)


def read_urdf_visuals(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """The visual meshes of a URDF in its rest pose (every joint at position 0).

    Args:
        path: the ``.urdf`` file; mesh file names are relative to it (``package://`` and ``file://`` stripped).

    Returns:
        (mesh file, float64 (4, 4) from mesh coordinates to the root link's frame, ``<mesh scale>`` included)
        per ``<visual>`` with a ``<mesh>``, links in document order.

    Raises:
        HabitatError: unreadable XML, a joint without parent or child.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise HabitatError(f"{path.name}: not a readable URDF ({exc})") from exc
    links = {str(link.get("name")): link for link in root.findall("link")}
    children: dict[str, list[tuple[str, np.ndarray]]] = {}
    for joint in root.findall("joint"):
        parent, child = joint.find("parent"), joint.find("child")
        if parent is None or child is None:
            raise HabitatError(f"{path.name}: joint {joint.get('name')!r} needs a <parent> and a <child>")
        children.setdefault(str(parent.get("link")), []).append((str(child.get("link")), _origin_matrix(joint, path)))
    has_parent = {c for kids in children.values() for c, _ in kids}
    frames: dict[str, np.ndarray] = {}
    stack = [(name, np.eye(4)) for name in links if name not in has_parent]
    while stack:
        name, frame = stack.pop()
        if name not in frames:  # a malformed URDF with a cycle ends here
            frames[name] = frame
            stack += [(c, frame @ m) for c, m in children.get(name, [])]
    out = []
    for name, link in links.items():
        for visual in link.findall("visual") if name in frames else []:
            mesh = visual.find("geometry/mesh")
            if mesh is None or not mesh.get("filename"):
                continue
            scale = _numbers(mesh.get("scale", "1 1 1"), path)
            filename = str(mesh.get("filename")).removeprefix("package://").removeprefix("file://")
            out.append((str((path.parent / filename).resolve()),
                        frames[name] @ _origin_matrix(visual, path) @ np.diag([*scale, 1.0])))
    return out


def _numbers(text: str, path: Path) -> list[float]:
    try:
        values = [float(x) for x in text.split()]
    except ValueError as exc:
        raise HabitatError(f"{path.name}: {text!r} is not 3 numbers") from exc
    if len(values) != 3 or not all(math.isfinite(x) for x in values):
        raise HabitatError(f"{path.name}: {text!r} is not 3 finite numbers")
    return values


def _origin_matrix(element: ET.Element, path: Path) -> np.ndarray:
    """The 4x4 of an element's ``<origin xyz rpy>`` (URDF: fixed-axis roll X, pitch Y, yaw Z)."""
    origin = element.find("origin")
    xyz = _numbers(origin.get("xyz", "0 0 0"), path) if origin is not None else [0.0] * 3
    roll, pitch, yaw = _numbers(origin.get("rpy", "0 0 0"), path) if origin is not None else [0.0] * 3
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]]) @ np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]]) \
        @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    m[:3, 3] = xyz
    return m


def _entries(instance: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    entries = instance.get(key, [])
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("template_name"), str) for e in entries):
        raise HabitatError(f"{where}: {key!r} must be a list of objects with a \"template_name\"")
    return entries


def _translation_origin(value: Any, default: str) -> str:
    """An instance's ``translation_origin`` (``default`` when absent, "default" or unknown, as habitat-sim)."""
    value = value.strip().lower() if isinstance(value, str) else ""
    return value if value in ORIGINS else default


def _pose(entry: dict[str, Any], where: str) -> tuple[_Vec3, tuple[float, float, float, float]]:
    """An instance's ``translation`` and unit ``rotation`` (w, x, y, z)."""
    translation = vec3(entry.get("translation", (0, 0, 0)), "translation", where)
    try:
        q = np.asarray(entry.get("rotation", (1, 0, 0, 0)), np.float64).reshape(4)
    except (TypeError, ValueError) as exc:
        raise HabitatError(f"{where}: 'rotation' must be 4 numbers (w, x, y, z)") from exc
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm < 1e-9:
        raise HabitatError(f"{where}: 'rotation' {q.tolist()} is not a usable quaternion (w, x, y, z)")
    return translation, tuple((q / norm).tolist())  # type: ignore[return-value]


def _scale_factor(entry: dict[str, Any], where: str) -> float:
    value = entry.get("uniform_scale", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HabitatError(f"{where}: 'uniform_scale' must be a number, got {value!r}")
    return float(value)


def _placed(template: ObjectPlacement | ArticulatedPlacement, entry: dict[str, Any], origin: str,
            classes: dict[int, str], where: str) -> ObjectPlacement | ArticulatedPlacement:
    """A template placed by one instance entry (``origin``: the scene's ``translation_origin``)."""
    translation, rotation = _pose(entry, where)
    s = _scale_factor(entry, where)
    common = {"template": str(entry["template_name"]), "translation": translation, "rotation": rotation,
              "category": classes.get(template.semantic_id, ""),
              "shader_type": shader_type_of(entry, template.shader_type)}
    if isinstance(template, ArticulatedPlacement):
        return replace(template, uniform_scale=s, **common)
    extra = vec3(entry.get("non_uniform_scale", (1, 1, 1)), "non_uniform_scale", where)
    return replace(template, scale=tuple(a * s * b for a, b in zip(template.scale, extra)),
                   translation_origin=_translation_origin(entry.get("translation_origin"), origin),
                   motion_type=str(entry.get("motion_type", "")), **common)


def object_transform(obj: ObjectPlacement, vertices: np.ndarray) -> np.ndarray:
    """The 4x4 affine map from an object's asset coordinates to the world (steps 1-4 of the module docstring).

    Args:
        obj: the placement.
        vertices: (V, 3) the asset's vertices, asset coordinates (for the bounding-box centre when ``obj.com``
            is None).

    Returns:
        float64 (4, 4); its 3x3 part has a negative determinant for a mirroring scale.
    """
    linear = np.diag(np.asarray(obj.scale, np.float64)) @ frame_rotation(obj.up, obj.front)
    if obj.com is not None:
        com = np.asarray(obj.scale, np.float64) * np.asarray(obj.com, np.float64)
    else:
        turned = np.asarray(vertices, np.float64) @ linear.T
        com = (turned.min(axis=0) + turned.max(axis=0)) / 2 if len(turned) else np.zeros(3)
    rot = quat_to_matrix(np.asarray(obj.rotation, np.float64))
    m = np.eye(4)
    m[:3, :3] = rot @ linear
    m[:3, 3] = np.asarray(obj.translation, np.float64) - (rot @ com if obj.translation_origin == "com" else 0.0)
    return m


def articulated_transforms(obj: ArticulatedPlacement) -> list[tuple[str, np.ndarray]]:
    """(mesh file, float64 (4, 4) from mesh coordinates to the world) of every visual of an articulated object."""
    base = np.eye(4)
    base[:3, :3] = quat_to_matrix(np.asarray(obj.rotation, np.float64)) * obj.uniform_scale
    base[:3, 3] = obj.translation
    return [(mesh, base @ np.asarray(m, np.float64).reshape(4, 4)) for mesh, m in obj.visuals]


def compose_scene(scene: Scene, stage: Stage) -> Scene:
    """The loaded stage with its scene instance's objects added (see the module docstring).

    The ray casters (Open3D's ``RaycastingScene``, Mitsuba) get one flat triangle mesh and Open3D has no
    instancing, so every instance is a transformed copy of its asset's arrays; each distinct asset file is read
    once per call (:func:`envsim.scenes.load.load_scene`) and its materials are shared by its instances. An
    asset that cannot be read is logged once and its instances left out.

    Args:
        scene: the stage as :func:`envsim.scenes.stage.load_stage` loaded it.
        stage: its record; its materials are unlit when ``stage.shader_type`` is "flat", or unset on a scan
            (MP3D, HM3D, Gibson, Replica: Habitat shows scans unlit, :data:`UNLIT_FAMILIES`).

    Returns:
        The scene with one more object per composed object (``object_names``, ``object_room``), its faces
        carrying the object's semantic id in ``face_instance`` (the stage's faces keep theirs, -1 unlabelled).

    Raises:
        SceneError: the composed scene has more vertices than int32 faces can index.
    """
    if stage.shader_type == "flat" or (not stage.shader_type and stage.family in UNLIT_FAMILIES):
        scene = replace(scene, materials=tuple(replace(m, unlit=True) for m in scene.materials))
    comp = stage.composition
    if comp is None:
        return scene
    cache: dict[str, Scene | None] = {}

    def asset(path: str) -> Scene | None:
        if path not in cache:
            try:
                cache[path] = load_scene(path, up=UpAxis.Y, name=Path(path).stem)
            except SceneError as exc:
                log.warning("scene %s: object asset not used, its instances are left out: %s", stage.name, exc)
                cache[path] = None
        return cache[path]

    build = _Builder(scene)
    for obj in comp.objects:
        mesh = asset(obj.render_asset)
        if mesh is not None:
            build.add([(mesh, object_transform(obj, mesh.vertices))], obj)
    for ao in comp.articulated:
        parts = [(mesh, m) for path, m in articulated_transforms(ao) if (mesh := asset(path)) is not None]
        if parts:
            build.add(parts, ao)
    return build.scene()


class _Builder:
    """The flat arrays of a composed scene, gathered part by part and joined once."""

    def __init__(self, stage: Scene):
        self.stage = stage
        instance = stage.face_instance if stage.face_instance is not None else np.full(stage.n_triangles, -1, np.int32)
        self.arrays: dict[str, list[np.ndarray]] = {
            "vertices": [stage.vertices], "faces": [stage.faces], "uv": [stage.uv], "color": [stage.color],
            "face_material": [stage.face_material], "face_object": [stage.face_object], "face_instance": [instance],
        }
        self.materials = list(stage.materials)
        self.offsets: dict[tuple[str, bool], int] = {}
        self.names = list(stage.object_names)
        self.bottoms: list[np.ndarray] = []
        self.n_vertices = len(stage.vertices)

    def add(self, parts: list[tuple[Scene, np.ndarray]], obj: ObjectPlacement | ArticulatedPlacement) -> None:
        """One object made of (asset, 4x4 asset-to-world) parts."""
        index, unlit = len(self.names), obj.shader_type == "flat"
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for mesh, m in parts:
            if self.n_vertices + len(mesh.vertices) > MAX_INDEX:
                raise SceneError(f"scene {self.stage.name}: composed objects exceed {MAX_INDEX:,} vertices")
            v = (mesh.vertices.astype(np.float64) @ m[:3, :3].T + m[:3, 3]).astype(np.float32)
            faces = mesh.faces[:, [0, 2, 1]] if np.linalg.det(m[:3, :3]) < 0 else mesh.faces  # mirrored: rewind
            key = (mesh.source, unlit)
            if key not in self.offsets:
                self.offsets[key] = len(self.materials)
                self.materials += [replace(mat, unlit=True) for mat in mesh.materials] if unlit else mesh.materials
            n = len(faces)
            for name, value in (("vertices", v), ("faces", faces + self.n_vertices), ("uv", mesh.uv),
                                ("color", mesh.color), ("face_material", mesh.face_material + self.offsets[key]),
                                ("face_object", np.full(n, index, np.int32)),
                                ("face_instance", np.full(n, obj.semantic_id, np.int32))):
                self.arrays[name].append(value)
            self.n_vertices += len(v)
            if len(v):
                lo, hi = np.minimum(lo, v.min(axis=0)), np.maximum(hi, v.max(axis=0))
        self.names.append(obj.name)
        self.bottoms.append(np.array([(lo[0] + hi[0]) / 2, lo[1] + 0.05, (lo[2] + hi[2]) / 2]))

    def scene(self) -> Scene:
        """The composed scene; an object's room is the room polygon under the centre of its bounding box."""
        stage = self.stage
        rooms = np.full(len(self.bottoms), -1, np.int32)
        if stage.rooms and self.bottoms:
            rooms = stage.room_polygon_at(np.stack(self.bottoms)).astype(np.int32)
        joined = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in self.arrays.items()}
        return replace(
            stage, **joined, materials=tuple(self.materials), object_names=tuple(self.names),
            object_room=np.concatenate([stage.object_room, rooms]).astype(np.int32), _room_map=[],
        )


def manifest_record(composition: Composition) -> dict[str, Any]:
    """What a dataset manifest records of a scene's composed objects: counts, the category of every semantic id
    the objects carry (a ``--semantic object`` pixel holds id + 1) and one SHA-256 over every file they read."""
    digest = hashlib.sha256()
    files = composition.files()
    for f in sorted(files):
        digest.update(f"{f}\0{file_sha256(f)}\n".encode())
    placed = (*composition.objects, *composition.articulated)
    categories = {str(p.semantic_id): p.category for p in sorted(placed, key=lambda p: p.semantic_id)
                  if p.semantic_id >= 0 and p.category}
    return {
        "objects": len(composition.objects), "articulated": len(composition.articulated),
        "categories": categories, "lexicon": composition.lexicon, "files": len(files), "sha256": digest.hexdigest(),
    }
