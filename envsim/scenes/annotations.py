"""Room and object annotations of public indoor-scene datasets (MP3D, Habitat, HM3D, Replica).

Readers, one per format, each checked against the format's own definition:

* Matterport3D ``house_segmentations/<id>.house`` (ASCII 1.1, Z-up): regions (rooms) with their floor
  polygons, label codes and heights, and objects with oriented boxes. Field layout from
  niessner/Matterport ``data_organization.md`` and the reference reader ``MPHouse::ReadAsciiFile`` in
  ``code/gaps/apps/mpview/mp.cpp``; habitat-sim reads the same lines in ``Mp3dSemanticScene.cpp``.
* Habitat region annotations: ``region_annotations`` in a ``*.semantic_config.json`` (habitat-sim
  ``SemanticAttributesManager.cpp`` / ``SemanticScene.cpp``): a Y-up poly-loop extruded from
  ``floor_height`` by ``extrusion_height``.
* HM3D-Semantics v0.2: ``<hash>.semantic.txt`` (habitat-sim ``HM3DSemanticScene.cpp``), the texture-coded
  ``<hash>.semantic.glb`` and the per-region room votes ``Per_Scene_Region_Votes.csv``.
* Replica: ``habitat/mesh_semantic.ply`` (quads with a per-face ``object_id``) and
  ``habitat/info_semantic.json``.

Room polygons (:class:`envsim.scenes.scene.Room`) always come out in the world frame. The two semantic-mesh
readers take ``up`` like :func:`envsim.scenes.scene.load_scene`: the asset's up axis, default Y (coordinates as
stored, which for HM3D's glTF is already the world frame; Replica is stored Z-up).

Dataset room names map onto :data:`envsim.scenes.rooms.ROOM_NAMES` through the user-editable table
``data_manifests/room_labels.toml`` (see :func:`load_room_labels`). World frame: right-handed, Y up,
metres; Z-up inputs are mapped with (x, y, z) -> (x, z, -y), so a Z-up floor point (x, y) lands at world
(x, z) = (x, -y).

Every reader raises :class:`AnnotationError` on malformed input, naming the file, the line where there is
one, and what to fix.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tomllib

from envsim.scenes.rooms import ROOM_NAMES, room_index
from envsim.scenes.scene import Room, SceneError, UpAxis, z_up_to_y_up

log = logging.getLogger(__name__)

__all__ = [
    "AnnotationError",
    "DEFAULT_ROOM_LABELS",
    "MP3D_REGION_CODES",
    "Hm3dFaceInstances",
    "Hm3dInstance",
    "Mp3dHouse",
    "Mp3dObject",
    "Mp3dRegion",
    "ReplicaInfo",
    "ReplicaSemantic",
    "hm3d_face_instances",
    "load_room_labels",
    "map_room_label",
    "read_habitat_regions",
    "read_hm3d_semantic_txt",
    "read_mp3d_house",
    "read_mp3d_house_full",
    "read_region_votes",
    "read_replica_info",
    "read_replica_semantic",
]

PathLike = str | os.PathLike

DEFAULT_ROOM_LABELS = Path(__file__).resolve().parents[2] / "data_manifests" / "room_labels.toml"
"""The packaged room-label table (``data_manifests/room_labels.toml`` next to the ``envsim`` package)."""

MP3D_REGION_CODES: dict[str, str] = {
    "a": "bathroom",
    "b": "bedroom",
    "c": "closet",
    "d": "dining room",
    "e": "entryway/foyer/lobby",
    "f": "familyroom",
    "g": "garage",
    "h": "hallway",
    "i": "library",
    "j": "laundryroom/mudroom",
    "k": "kitchen",
    "l": "living room",
    "m": "meetingroom/conferenceroom",
    "n": "lounge",
    "o": "office",
    "p": "porch/terrace/deck/driveway",
    "r": "rec/game",
    "s": "stairs",
    "t": "toilet",
    "u": "utilityroom/toolroom",
    "v": "tv",
    "w": "workout/gym/exercise",
    "x": "outdoor",
    "y": "balcony",
    "z": "other room",
    "B": "bar",
    "C": "classroom",
    "D": "dining booth",
    "S": "spa/sauna",
    "Z": "junk",
    "-": "no label",
}
"""Matterport3D region label codes and their meanings (niessner/Matterport ``data_organization.md``)."""

HM3D_TXT_HEADER = "HM3D Semantic Annotations"
"""First line of an HM3D ``semantic.txt``; habitat-sim looks for it to recognise the format."""

HABITAT_DEFAULT_FLOOR_HEIGHT = 0.0
HABITAT_DEFAULT_EXTRUSION_HEIGHT = 2.5
"""Habitat's defaults for a region without ``floor_height`` / ``extrusion_height`` (``SemanticAttributes.cpp``)."""


class AnnotationError(SceneError):
    """An annotation file that cannot be used; the message names the file, the line and what is wrong."""


def _where(path: PathLike, line: int | None = None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


# ----------------------------------------------------------------------------------------------------------
# Room-label table
# ----------------------------------------------------------------------------------------------------------


def _normalize_name(name: str) -> str:
    """Lookup key of a dataset room name: single characters exact, longer names case/spacing-insensitive."""
    s = str(name).strip()
    if len(s) <= 1:
        return s
    return " ".join(s.lower().replace("_", " ").replace("-", " ").split())


def load_room_labels(path: PathLike | None = None) -> dict[str, dict[str, str]]:
    """Read a room-label table (TOML): dataset family -> {dataset room name or code -> toolkit room name}.

    Args:
        path: a TOML file with one table per dataset family (``[mp3d]``, ``[hm3d]``, ``[habitat]``, ...);
            each value is one of :data:`envsim.scenes.rooms.ROOM_NAMES` or ``""`` for unknown. Defaults to the
            packaged ``data_manifests/room_labels.toml`` (:data:`DEFAULT_ROOM_LABELS`).

    Returns:
        family -> {name as written in the file -> canonical toolkit room name or ""}.

    Raises:
        AnnotationError: the file is missing or not TOML, a family is not a table, or a value is not a
            toolkit room name.
    """
    path = Path(path) if path is not None else DEFAULT_ROOM_LABELS
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise AnnotationError(f"room-label table not found: {path}; pass an existing TOML file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"cannot read room-label table {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AnnotationError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from exc
    table: dict[str, dict[str, str]] = {}
    for family, entries in raw.items():
        if not isinstance(entries, dict):
            raise AnnotationError(
                f"{path}: top-level key {family!r} must be a table like [{family}] mapping room names to "
                f"toolkit room names, not a {type(entries).__name__}"
            )
        mapped: dict[str, str] = {}
        for name, value in entries.items():
            if not isinstance(value, str):
                raise AnnotationError(
                    f"{path}: [{family}] {name!r} = {value!r} must be a string: one of {', '.join(ROOM_NAMES)} "
                    f"or \"\" for unknown"
                )
            if value.strip() == "":
                mapped[name] = ""
                continue
            idx = room_index(value)
            if idx < 0:
                raise AnnotationError(
                    f"{path}: [{family}] {name!r} = {value!r} is not a toolkit room name; use one of "
                    f"{', '.join(ROOM_NAMES)} or \"\" for unknown"
                )
            mapped[name] = ROOM_NAMES[idx]
        table[family] = mapped
    return table


def _unmapped(name: str) -> str:
    """A label that keeps the dataset's name but never reads as a toolkit room (index -1)."""
    return name if room_index(name) < 0 else f"{name} (unmapped)"


def _lookup(family: str, name: str, table: dict[str, dict[str, str]]) -> str | None:
    """The table's value for ``name`` ("" = explicitly unknown), or None when the table omits it."""
    if family not in table:
        raise AnnotationError(
            f"the room-label table has no [{family}] table (it has: {', '.join(sorted(table)) or 'none'}); "
            f"add a [{family}] section to data_manifests/room_labels.toml or to your own table"
        )
    entries = table[family]
    if name in entries:
        return entries[name]
    key = _normalize_name(name)
    for k, v in entries.items():
        if _normalize_name(k) == key:
            return v
    return None


def map_room_label(family: str, name: str, table: dict[str, dict[str, str]] | None = None) -> str:
    """Map a dataset's room name or code to the toolkit's vocabulary.

    Args:
        family: dataset family, a table of ``table`` (``"mp3d"``, ``"hm3d"``, ``"habitat"``, ...).
        name: the room name or code as the dataset writes it.
        table: from :func:`load_room_labels`; defaults to the packaged table.

    Returns:
        A name in :data:`envsim.scenes.rooms.ROOM_NAMES` when the table maps ``name`` to one, or when ``name``
        already is one and the table omits it. Otherwise ``name`` itself, so :attr:`Room.index` gives -1;
        a name mapped explicitly to ``""`` that reads as a toolkit room is returned as ``"<name> (unmapped)"``.

    Raises:
        AnnotationError: ``table`` has no ``family`` table.
    """
    table = load_room_labels() if table is None else table
    value = _lookup(family, name, table)
    if value:
        return value
    if value is None and room_index(name) >= 0:
        return ROOM_NAMES[room_index(name)]
    return _unmapped(name)


# ----------------------------------------------------------------------------------------------------------
# Matterport3D .house
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Mp3dRegion:
    """One ``R`` line of a ``.house`` file.

    Attributes:
        index: position of the region among the file's ``R`` lines (what ``S`` and ``O`` lines refer to).
        level: index of the region's level, -1 for none.
        code: the MP3D label code (see :data:`MP3D_REGION_CODES`).
        room: the region as a room in the Y-up world (label mapped through the room-label table).
        from_surface: True when ``room.polygon`` is the region's floor surface (``S`` + ``V`` lines),
            False when it is the region's bounding rectangle.
    """

    index: int
    level: int
    code: str
    room: Room
    from_surface: bool


@dataclass(frozen=True, eq=False)
class Mp3dObject:
    """One ``O`` line of a ``.house`` file, in the Y-up world.

    Attributes:
        index: position among the file's ``O`` lines.
        region: index into :attr:`Mp3dHouse.regions`, -1 for none.
        category: raw category name (``C`` line ``category_mapping_name``, '#' read as space), "" if none.
        mpcat40: the mpcat40 category name, "" if none.
        center: float64 (3,) box centre in metres.
        axes: float64 (3, 3) rows are the box axes a0, a1 and a0 x a1 (unit vectors).
        radii: float64 (3,) half-extents along the axes in metres.
    """

    index: int
    region: int
    category: str
    mpcat40: str
    center: np.ndarray
    axes: np.ndarray
    radii: np.ndarray


@dataclass(frozen=True, eq=False)
class Mp3dHouse:
    """What :func:`read_mp3d_house_full` reads from a ``.house`` file.

    Attributes:
        name: the house name from the ``H`` line ("" for "-").
        regions: one per ``R`` line, in file order.
        objects: one per ``O`` line, in file order.
    """

    name: str
    regions: tuple[Mp3dRegion, ...]
    objects: tuple[Mp3dObject, ...]

    @property
    def rooms(self) -> tuple[Room, ...]:
        """One room per region, in region order (so ``rooms[obj.region]`` is an object's room)."""
        return tuple(r.room for r in self.regions)


# Minimum fields per record we parse: everything up to the last meaningful field (trailing zeros optional).
_HOUSE_MIN_FIELDS = {"H": 24, "R": 16, "S": 17, "V": 10, "C": 6, "O": 16}
_HOUSE_RECORDS = "HLRPSVICOE"


class _Tokens:
    """Typed access to one whitespace-split line, raising AnnotationError with the file and line."""

    def __init__(self, path: PathLike, lineno: int, tokens: list[str]):
        self.path, self.lineno, self.tokens = path, lineno, tokens

    def fail(self, msg: str) -> AnnotationError:
        return AnnotationError(f"{_where(self.path, self.lineno)}: {msg}")

    def int(self, i: int, what: str) -> int:
        try:
            return int(self.tokens[i])
        except ValueError:
            raise self.fail(f"{what} (field {i + 1}) must be an integer, got {self.tokens[i]!r}") from None

    def floats(self, i: int, n: int, what: str) -> np.ndarray:
        try:
            out = np.array([float(t) for t in self.tokens[i : i + n]], dtype=np.float64)
        except ValueError:
            bad = next(t for t in self.tokens[i : i + n] if not _is_float(t))
            raise self.fail(f"{what} (fields {i + 1}-{i + n}) must be numbers, got {bad!r}") from None
        if not np.all(np.isfinite(out)):
            raise self.fail(f"{what} (fields {i + 1}-{i + n}) must be finite, got {self.tokens[i : i + n]}")
        return out


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise AnnotationError(f"{what} not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            f"{path}: not a UTF-8 text file (byte {exc.start} cannot be decoded); is this really a {what}?"
        ) from exc
    except OSError as exc:
        raise AnnotationError(f"cannot read {what} {path}: {exc}") from exc


def read_mp3d_house_full(path: PathLike, *, table: dict[str, dict[str, str]] | None = None) -> Mp3dHouse:
    """Read regions and objects of a Matterport3D ``.house`` file into the Y-up world.

    The file is ASCII 1.1: ``ASCII 1.1``, one ``H`` line with the record counts, then ``L`` (levels),
    ``R`` (regions), ``P`` (portals), ``S`` (surfaces), ``V`` (surface vertices), ``P`` (panoramas),
    ``I`` (images), ``C`` (categories), ``O`` (objects) and ``E`` (segments) lines. Coordinates are
    metres, Z up.

    A region's room polygon is its floor surface (the first of its ``S`` surfaces whose normal points up,
    nz >= 0.9, with its ``V`` vertices in file order, as ``MPRegion::FloorPolygon`` in the reference
    reader); regions without one fall back to their bounding rectangle. The floor is the bounding box's
    zlo (the box is the union of the region's floor surfaces); the ceiling is floor + ``height``, or the
    box's zhi when ``height`` is not positive.

    Args:
        path: the ``.house`` file.
        table: room-label table from :func:`load_room_labels` (default: the packaged one); its ``[mp3d]``
            table maps label codes to toolkit rooms. Unmapped codes keep their meaning as the label
            (e.g. ``"closet"``), so their :attr:`Room.index` is -1.

    Returns:
        The house's regions (one :class:`Mp3dRegion` per ``R`` line) and objects.

    Raises:
        AnnotationError: wrong header, a record with missing or non-numeric fields, an unknown region
            label code, a reference to a missing region/surface/category, or record counts that differ
            from the ``H`` line (a truncated file).
    """
    path = Path(path)
    table = load_room_labels() if table is None else table
    if "mp3d" not in table:
        raise AnnotationError("the room-label table has no [mp3d] table; add one (see data_manifests/room_labels.toml)")
    codes = set(MP3D_REGION_CODES) | set(table["mp3d"])
    lines = _read_text(path, "MP3D .house file").splitlines()

    first = next(((i, ln) for i, ln in enumerate(lines, 1) if ln.strip()), None)
    if first is None:
        raise AnnotationError(f"{path}: empty file; expected an MP3D .house file starting with 'ASCII 1.1'")
    if first[1].split() != ["ASCII", "1.1"]:
        raise AnnotationError(
            f"{_where(path, first[0])}: header is {first[1].strip()[:40]!r}, expected 'ASCII 1.1' "
            "(a Matterport3D house_segmentations/<id>.house file)"
        )

    counts: dict[str, int] | None = None
    name = ""
    seen = {c: 0 for c in _HOUSE_RECORDS}
    regions: list[tuple[int, int, int, str, np.ndarray, float]] = []  # line, index, level, code, bbox, height
    surfaces: list[tuple[int, int, np.ndarray]] = []  # line, region, normal
    vertices: list[tuple[int, int, np.ndarray]] = []  # line, surface, position
    categories: list[tuple[str, str]] = []
    objects: list[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    for lineno in range(first[0] + 1, len(lines) + 1):
        toks = lines[lineno - 1].split()
        if not toks:
            continue
        rec = toks[0]
        t = _Tokens(path, lineno, toks)
        if rec not in seen:
            raise t.fail(f"unknown record type {rec!r}; .house lines start with one of {', '.join(_HOUSE_RECORDS)}")
        if rec != "H" and counts is None:
            raise t.fail(f"{rec!r} line before the 'H' header line; the second line of a .house file is 'H ...'")
        need = _HOUSE_MIN_FIELDS.get(rec, 1)
        if len(toks) < need:
            raise t.fail(f"truncated {rec!r} line: {len(toks)} fields, expected at least {need}")
        seen[rec] += 1
        if rec == "H":
            if counts is not None:
                raise t.fail("second 'H' line; a .house file has one header line")
            name = "" if toks[1] == "-" else toks[1]
            keys = ("I", "panoramas", "V", "S", "E", "O", "C", "R", "portals", "L")
            counts = {k: t.int(3 + i, f"#{k} count") for i, k in enumerate(keys)}
            if any(v < 0 for v in counts.values()):
                raise t.fail("negative record count in the 'H' line")
        elif rec == "R":
            index = t.int(1, "region_index")
            level = t.int(2, "level_index")
            code = toks[5]
            if code not in codes:
                raise t.fail(
                    f"unknown MP3D region label code {code!r}; known codes: {''.join(sorted(codes))} "
                    "(add it to [mp3d] in the room-label table if the file is right)"
                )
            t.floats(6, 3, "position")
            bbox = t.floats(9, 6, "bounding box")
            if np.any(bbox[:3] > bbox[3:]):
                raise t.fail(f"bounding box min {bbox[:3].tolist()} exceeds max {bbox[3:].tolist()}")
            height = float(t.floats(15, 1, "height")[0])
            regions.append((lineno, index, level, code, bbox, height))
        elif rec == "S":
            surfaces.append((lineno, t.int(2, "region_index"), t.floats(8, 3, "normal")))
            t.floats(5, 3, "position")
            t.floats(11, 6, "bounding box")
        elif rec == "V":
            vertices.append((lineno, t.int(2, "surface_index"), t.floats(4, 3, "position")))
        elif rec == "C":
            t.int(1, "category_index")
            t.int(2, "category_mapping_index")
            t.int(4, "mpcat40_index")
            raw_name = "" if toks[3] == "-" else toks[3].replace("#", " ")
            mpcat = "" if toks[5] == "-" else toks[5].replace("#", " ")
            categories.append((raw_name, mpcat))
        elif rec == "O":
            objects.append(
                (
                    lineno,
                    t.int(2, "region_index"),
                    t.int(3, "category_index"),
                    t.floats(4, 3, "center"),
                    t.floats(7, 3, "axis0"),
                    t.floats(10, 3, "axis1"),
                    t.floats(13, 3, "radii"),
                )
            )

    if counts is None:
        raise AnnotationError(f"{path}: no 'H' header line after 'ASCII 1.1'; the file is not a .house file")
    expected = dict(counts)
    expected["P"] = expected.pop("portals") + expected.pop("panoramas")
    for rec, want in expected.items():
        if seen[rec] != want:
            raise AnnotationError(
                f"{path}: the 'H' line declares {want} {rec!r} records but the file has {seen[rec]}; "
                "the file is truncated or was edited: re-download it or fix the counts"
            )

    n_regions = len(regions)
    region_surfaces: list[list[int]] = [[] for _ in range(n_regions)]
    for s_idx, (lineno, reg, _) in enumerate(surfaces):
        if not -1 <= reg < n_regions:
            raise AnnotationError(f"{_where(path, lineno)}: surface refers to region {reg}, the file has {n_regions}")
        if reg >= 0:
            region_surfaces[reg].append(s_idx)
    surface_vertices: list[list[np.ndarray]] = [[] for _ in surfaces]
    for lineno, surf, pos in vertices:
        if not -1 <= surf < len(surfaces):
            raise AnnotationError(
                f"{_where(path, lineno)}: vertex refers to surface {surf}, the file has {len(surfaces)}"
            )
        if surf >= 0:
            surface_vertices[surf].append(pos)

    out_regions = []
    for r_idx, (lineno, _index, level, code, bbox, height) in enumerate(regions):
        polygon, from_surface = None, False
        for s_idx in region_surfaces[r_idx]:
            if surfaces[s_idx][2][2] < 0.9:
                continue
            pts = surface_vertices[s_idx]
            if len(pts) >= 3:
                xy = np.stack(pts)[:, :2]
                polygon, from_surface = np.stack([xy[:, 0], -xy[:, 1]], axis=1), True
            else:
                log.warning(
                    "%s: floor surface of region %d has %d vertices; using its bounding box",
                    _where(path, lineno), r_idx, len(pts),
                )
            break
        if polygon is None:
            x0, y0, x1, y1 = bbox[0], bbox[1], bbox[3], bbox[4]
            polygon = np.array([[x0, -y0], [x1, -y0], [x1, -y1], [x0, -y1]], dtype=np.float64)
        floor = float(bbox[2])
        ceiling = floor + height if height > 0 else float(bbox[5])
        mapped = _lookup("mp3d", code, table)
        label = mapped if mapped else _unmapped(MP3D_REGION_CODES.get(code, code))
        room = Room(label=label, polygon=np.ascontiguousarray(polygon, np.float64), floor=floor, ceiling=ceiling)
        out_regions.append(Mp3dRegion(index=r_idx, level=level, code=code, room=room, from_surface=from_surface))

    out_objects = []
    for o_idx, (lineno, reg, cat, center, a0, a1, radii) in enumerate(objects):
        if not -1 <= reg < n_regions:
            raise AnnotationError(f"{_where(path, lineno)}: object refers to region {reg}, the file has {n_regions}")
        if not -1 <= cat < len(categories):
            raise AnnotationError(
                f"{_where(path, lineno)}: object refers to category {cat}, the file has {len(categories)}"
            )
        raw_name, mpcat = categories[cat] if cat >= 0 else ("", "")
        axes = z_up_to_y_up(np.stack([a0, a1, np.cross(a0, a1)]))
        out_objects.append(
            Mp3dObject(
                index=o_idx,
                region=reg,
                category=raw_name,
                mpcat40=mpcat,
                center=z_up_to_y_up(center).astype(np.float64),
                axes=axes.astype(np.float64),
                radii=radii,
            )
        )
    log.debug("%s: %d regions, %d objects", path, len(out_regions), len(out_objects))
    return Mp3dHouse(name=name, regions=tuple(out_regions), objects=tuple(out_objects))


def read_mp3d_house(path: PathLike, *, table: dict[str, dict[str, str]] | None = None) -> tuple[Room, ...]:
    """Rooms of a Matterport3D ``.house`` file in the Y-up world, one per ``R`` line, in file order.

    See :func:`read_mp3d_house_full` for the format, the polygon/floor/ceiling rules and the errors.

    Args:
        path: the ``.house`` file.
        table: room-label table (default: the packaged one).

    Returns:
        One :class:`envsim.scenes.scene.Room` per region: polygon float64 (P, 2) world (x, z) metres, floor and
        ceiling heights in metres (world y).
    """
    return read_mp3d_house_full(path, table=table).rooms


# ----------------------------------------------------------------------------------------------------------
# Habitat region annotations
# ----------------------------------------------------------------------------------------------------------


def _load_json(path: Path, what: str):
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{_where(path, exc.lineno)}: not valid JSON ({exc.msg}, column {exc.colno})") from exc


def _json_number(value, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


def read_habitat_regions(
    semantic_config_json_path: PathLike, *, table: dict[str, dict[str, str]] | None = None
) -> tuple[Room, ...]:
    """Rooms from the ``region_annotations`` of a habitat ``*.semantic_config.json``.

    Each region is ``{"name", "label", "poly_loop": [[x, y, z], ...], "floor_height",
    "extrusion_height", "min_bounds", "max_bounds"}`` in habitat's Y-up world (habitat-sim keeps each
    point's (x, z) as the 2D loop and tests heights against y). ``poly_loop`` may also be an object whose
    values are the points, in key order. Missing heights take habitat's defaults (floor 0.0 m, extrusion
    2.5 m).

    Args:
        semantic_config_json_path: the ``*.semantic_config.json`` file.
        table: room-label table (default: the packaged one); its ``[habitat]`` table maps labels.

    Returns:
        One room per region, in file order: polygon float64 (P, 2) = the loop's (x, z) in metres, floor =
        ``floor_height``, ceiling = ``floor_height + extrusion_height``.

    Raises:
        AnnotationError: not JSON, no or an empty ``region_annotations`` list, a region without ``label``
            or ``poly_loop``, a loop of fewer than 3 points or with non-numeric coordinates, a negative
            extrusion.
    """
    path = Path(semantic_config_json_path)
    table = load_room_labels() if table is None else table
    data = _load_json(path, "habitat semantic config")
    if not isinstance(data, dict) or "region_annotations" not in data:
        raise AnnotationError(
            f"{path}: no 'region_annotations' list; a habitat *.semantic_config.json lists its rooms under "
            "'region_annotations' (this scene may have no region annotations)"
        )
    regions = data["region_annotations"]
    if not isinstance(regions, list):
        raise AnnotationError(f"{path}: 'region_annotations' must be a list of regions, got {type(regions).__name__}")
    if not regions:
        raise AnnotationError(f"{path}: 'region_annotations' is empty; the scene has no rooms to read")
    rooms = []
    for i, region in enumerate(regions):
        where = f"{path}: region_annotations[{i}]"
        if not isinstance(region, dict):
            raise AnnotationError(f"{where} must be an object, got {type(region).__name__}")
        if isinstance(region.get("name"), str):
            where += f" ({region['name']!r})"
        for key in ("label", "poly_loop"):
            if key not in region:
                raise AnnotationError(f"{where} has no {key!r}; every region needs 'label' and 'poly_loop'")
        label = region["label"]
        if not isinstance(label, str):
            raise AnnotationError(f"{where}: 'label' must be a string, got {label!r}")
        loop = region["poly_loop"]
        if isinstance(loop, dict):
            loop = [loop[k] for k in sorted(loop, key=lambda k: (len(k), k))]
        if not isinstance(loop, list) or len(loop) < 3:
            raise AnnotationError(f"{where}: 'poly_loop' must list at least 3 [x, y, z] points")
        pts = []
        for j, p in enumerate(loop):
            if not isinstance(p, (list, tuple)) or len(p) != 3:
                raise AnnotationError(f"{where}: poly_loop[{j}] must be an [x, y, z] point, got {p!r}")
            pts.append([_json_number(c, where, f"poly_loop[{j}]") for c in p])
        pts = np.asarray(pts, dtype=np.float64)
        floor = _json_number(region.get("floor_height", HABITAT_DEFAULT_FLOOR_HEIGHT), where, "floor_height")
        ext = _json_number(region.get("extrusion_height", HABITAT_DEFAULT_EXTRUSION_HEIGHT), where, "extrusion_height")
        if ext < 0:
            raise AnnotationError(f"{where}: 'extrusion_height' is {ext}; it must be >= 0 (metres above the floor)")
        rooms.append(
            Room(
                label=map_room_label("habitat", label, table),
                polygon=np.ascontiguousarray(pts[:, [0, 2]]),
                floor=floor,
                ceiling=floor + ext,
            )
        )
    return tuple(rooms)


# ----------------------------------------------------------------------------------------------------------
# HM3D-Semantics v0.2
# ----------------------------------------------------------------------------------------------------------


class Hm3dInstance(NamedTuple):
    """One line of an HM3D ``semantic.txt``.

    Attributes:
        instance_id: unique instance id (>= 1; habitat reserves 0 for "Unknown").
        hex_color: the annotation colour as 6 upper-case hex digits, RRGGBB.
        category: object category (may contain commas).
        region_id: the region (room) the instance belongs to.
    """

    instance_id: int
    hex_color: str
    category: str
    region_id: int


_HM3D_QUOTED = re.compile(r'^\s*(-?\d+)\s*,\s*#?([0-9A-Fa-f]{6})\s*,\s*"(.*)"\s*,\s*(-?\d+)\s*$')
_HM3D_PLAIN = re.compile(r"^\s*(-?\d+)\s*,\s*#?([0-9A-Fa-f]{6})\s*,\s*([^,\"]*?)\s*,\s*(-?\d+)\s*$")


def read_hm3d_semantic_txt(path: PathLike) -> list[Hm3dInstance]:
    """Read an HM3D-Semantics ``<hash>.semantic.txt``.

    Format (habitat-sim ``HM3DSemanticScene.cpp``): a first line containing ``HM3D Semantic Annotations``,
    then one line per instance: ``<id>,<RRGGBB>,"<category>",<region id>``, e.g.
    ``1,9D1A30,"wall",0``. The category is quoted and may contain commas. Files without the header line
    (as delivered before habitat's processing) are read too.

    Args:
        path: the ``semantic.txt`` file.

    Returns:
        The instances in file order.

    Raises:
        AnnotationError: a line that is not ``id,hex,"category",region`` (named by line number), or a
            repeated instance id.
    """
    path = Path(path)
    lines = _read_text(path, "HM3D semantic.txt").splitlines()
    out: list[Hm3dInstance] = []
    ids: dict[int, int] = {}
    colors: dict[str, int] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not out and HM3D_TXT_HEADER in line:
            continue
        m = _HM3D_QUOTED.match(line) or _HM3D_PLAIN.match(line)
        if m is None:
            hint = f" or the header '{HM3D_TXT_HEADER}'" if not out else ""
            raise AnnotationError(
                f'{_where(path, lineno)}: expected <id>,<RRGGBB>,"<category>",<region id>{hint}, '
                f"got {line.strip()[:80]!r}"
            )
        inst = Hm3dInstance(int(m.group(1)), m.group(2).upper(), m.group(3).strip(), int(m.group(4)))
        if inst.instance_id in ids:
            raise AnnotationError(
                f"{_where(path, lineno)}: instance id {inst.instance_id} repeats line {ids[inst.instance_id]}; "
                "ids must be unique"
            )
        if inst.hex_color in colors:
            log.warning(
                "%s: colour %s repeats line %d; faces of that colour map to the first instance (as habitat)",
                _where(path, lineno), inst.hex_color, colors[inst.hex_color],
            )
        else:
            colors[inst.hex_color] = lineno
        ids[inst.instance_id] = lineno
        out.append(inst)
    if not out:
        raise AnnotationError(
            f'{path}: no instance lines; an HM3D semantic.txt lists <id>,<RRGGBB>,"<category>",<region id> per line'
        )
    return out


def _scene_key(scene: str) -> str:
    """``00800-TEEsavR23oF`` and ``TEEsavR23oF`` both identify a scene by its hash."""
    s = scene.strip()
    return s.split("-", 1)[1] if re.match(r"^\d+-", s) else s


def read_region_votes(
    csv_path: PathLike, scene_id: str, *, table: dict[str, dict[str, str]] | None = None
) -> dict[int, str]:
    """Room names of one scene's regions from HM3D's ``Per_Scene_Region_Votes.csv``.

    Layout (habitat-sim HM3D annotation processing script, ``save_per_scene_region_data``): header
    ``Scene Name,Region #,Bathroom,Bedroom,Dining room,Garage,Hall/stairwell,Kitchen,Laundry room,
    Living room,Office,Rec room,Unknown room,Room Proposal``, then one row per region: the scene directory
    name (``00800-TEEsavR23oF``), the region id, the vote per room name, and the proposal (" Bedroom",
    " Unknown room" or " Tie: Bedroom & Office"). The weighted-votes file (``Weighted Room Proposal``)
    reads the same way.

    Args:
        csv_path: the votes CSV.
        scene_id: the scene directory name (``00800-TEEsavR23oF``) or its hash (``TEEsavR23oF``).
        table: room-label table (default: the packaged one); its ``[hm3d]`` table maps proposals.

    Returns:
        region id -> toolkit room name, or the proposal itself when unmapped (``"Unknown room"``, ties).

    Raises:
        AnnotationError: a row with a missing proposal or a non-integer region id, a region listed twice,
            or no row for ``scene_id``.
    """
    path = Path(csv_path)
    table = load_room_labels() if table is None else table
    text = _read_text(path, "HM3D region votes CSV")
    rows = list(csv.reader(text.splitlines()))
    scene_col, region_col, prop_col, start = 0, 1, -1, 0
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header and header[0] in ("scene name", "scene"):
        start = 1
        for i, c in enumerate(header):
            if c.startswith("scene"):
                scene_col = i
            elif c.startswith("region"):
                region_col = i
            elif c.endswith("proposal"):
                prop_col = i
        if prop_col < 0:
            raise AnnotationError(f"{_where(path, 1)}: no 'Room Proposal' column in the header {rows[0]}")
    want = _scene_key(scene_id)
    out: dict[int, str] = {}
    scenes: set[str] = set()
    for lineno, row in enumerate(rows[start:], start + 1):
        if not any(c.strip() for c in row):
            continue
        need = max(scene_col, region_col, prop_col if prop_col >= 0 else 2) + 1
        if len(row) < need or (header and start and len(row) != len(header)):
            raise AnnotationError(
                f"{_where(path, lineno)}: {len(row)} columns, expected {len(header) if start else f'at least {need}'}"
            )
        scene = row[scene_col].strip()
        scenes.add(scene)
        if _scene_key(scene) != want:
            continue
        try:
            region = int(row[region_col])
        except ValueError:
            raise AnnotationError(f"{_where(path, lineno)}: region id {row[region_col]!r} is not an integer") from None
        proposal = row[prop_col].strip()
        if not proposal:
            raise AnnotationError(f"{_where(path, lineno)}: empty room proposal for region {region}")
        if region in out:
            raise AnnotationError(f"{_where(path, lineno)}: region {region} of scene {scene} is listed twice")
        out[region] = map_room_label("hm3d", proposal, table)
    if not out:
        examples = ", ".join(sorted(scenes)[:3])
        raise AnnotationError(
            f"{path}: no rows for scene {scene_id!r}; scenes are named like the HM3D directories "
            f"({examples or 'the file has no rows'})"
        )
    return out


class Hm3dFaceInstances(NamedTuple):
    """Per-face instance ids of an HM3D semantic mesh.

    Attributes:
        vertices: float32 (V, 3) world positions in metres (node transforms applied).
        faces: int32 (F, 3) vertex indices.
        face_instance: int32 (F,) instance id from ``semantic.txt``, -1 where the face's colour is not listed.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_instance: np.ndarray


def _sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest texel of uint8 (H, W, 3) ``image`` at OpenGL uv (v = 0 at the bottom row), REPEAT outside [0, 1]."""
    h, w = image.shape[:2]
    uv = np.asarray(uv, dtype=np.float64)
    uv = np.where((uv >= 0.0) & (uv <= 1.0), uv, uv - np.floor(uv))
    col = np.clip(np.floor(uv[:, 0] * w), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor((1.0 - uv[:, 1]) * h), 0, h - 1).astype(np.int64)
    return image[row, col]


def _face_colors(geom) -> np.ndarray | None:
    """uint8 (F, 3) colour of each face of a trimesh geometry, None when it carries no colour."""
    import trimesh

    faces = np.asarray(geom.faces, dtype=np.int64)
    visual = geom.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        mat = visual.material
        image, factor = None, None
        if isinstance(mat, trimesh.visual.material.PBRMaterial):
            image, factor = mat.baseColorTexture, mat.baseColorFactor
        elif isinstance(mat, trimesh.visual.material.SimpleMaterial):
            image, factor = mat.image, mat.diffuse
        uv = visual.uv
        if image is not None and uv is not None and len(uv) == len(geom.vertices):
            texels = np.asarray(image.convert("RGB"), dtype=np.uint8)
            centroid_uv = np.asarray(uv, dtype=np.float64)[faces].mean(axis=1)
            return _sample_texture(texels, centroid_uv)
        if factor is not None:
            rgb = np.asarray(factor).reshape(-1)[:3]
            if rgb.dtype.kind == "f":  # trimesh stores uint8; accept [0, 1] floats too
                rgb = np.round(np.clip(rgb, 0.0, 1.0) * 255.0)
            return np.tile(rgb.astype(np.uint8), (len(faces), 1))
        return None
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.defined:
        if visual.kind == "face":
            return np.asarray(visual.face_colors, dtype=np.uint8)[:, :3]
        return np.asarray(visual.vertex_colors, dtype=np.uint8)[faces[:, 0], :3]
    return None


def hm3d_face_instances(
    semantic_glb_path: PathLike, txt_path: PathLike, *, up: UpAxis = UpAxis.Y
) -> Hm3dFaceInstances:
    """Instance id of every triangle of an HM3D ``<hash>.semantic.glb``.

    The semantic GLB codes each instance as a flat colour: in its base-colour texture (v0.2) or in vertex
    colours. Each face's colour is the texel nearest its centroid's uv (glTF uv as read by trimesh, i.e.
    OpenGL convention: row = (1 - v) * H), else its first vertex's colour, else its material's base
    colour; the exact RGB is looked up in ``semantic.txt``. Lossy (JPEG) textures will not match exactly.
    HM3D GLBs are stored Y-up like any glTF (habitat's HM3D stages use up = [0, 1, 0]); pass
    ``up=UpAxis.Z`` for a Z-up asset.

    Args:
        semantic_glb_path: the ``semantic.glb`` file.
        txt_path: its ``semantic.txt``.
        up: the GLB's up axis.

    Returns:
        vertices float32 (V, 3) metres, faces int32 (F, 3), face_instance int32 (F,) (-1 = colour not listed).

    Raises:
        AnnotationError: the GLB is missing, unreadable or has no triangles, or the txt is malformed.
    """
    import trimesh

    path = Path(semantic_glb_path)
    instances = read_hm3d_semantic_txt(txt_path)
    lut: dict[int, int] = {}
    for inst in instances:
        lut.setdefault(int(inst.hex_color, 16), inst.instance_id)
    if not path.is_file():
        raise AnnotationError(f"semantic GLB not found: {path}")
    try:
        loaded = trimesh.load(str(path), force="scene", process=False)
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise AnnotationError(f"{path}: cannot read the GLB: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    verts, faces, inst = [], [], []
    offset = 0
    n_uncoloured = 0
    for node in loaded.graph.nodes_geometry:
        transform, geom_name = loaded.graph[node]
        geom = loaded.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        m = np.asarray(transform, dtype=np.float64)
        v = np.asarray(geom.vertices, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]
        f = np.asarray(geom.faces, dtype=np.int64)
        colors = _face_colors(geom)
        if colors is None:
            n_uncoloured += len(f)
            ids = np.full(len(f), -1, dtype=np.int32)
        else:
            keys = (colors[:, 0].astype(np.int64) << 16) | (colors[:, 1].astype(np.int64) << 8) | colors[:, 2]
            uniq, inv = np.unique(keys, return_inverse=True)
            ids = np.array([lut.get(int(k), -1) for k in uniq], dtype=np.int32)[inv.reshape(-1)]
        verts.append(v)
        faces.append(f + offset)
        inst.append(ids)
        offset += len(v)
    if not faces:
        raise AnnotationError(f"{path}: the GLB holds no triangles")
    if n_uncoloured:
        log.warning(
            "%s: %d faces carry no colour (no texture, vertex or material colour); labelled -1", path, n_uncoloured
        )
    vertices = np.concatenate(verts)
    if not np.all(np.isfinite(vertices)):
        raise AnnotationError(f"{path}: non-finite (NaN or inf) vertex coordinates")
    if up is UpAxis.Z:
        vertices = z_up_to_y_up(vertices)
    face_instance = np.concatenate(inst)
    log.debug("%s: %d of %d faces matched an instance", path, int((face_instance >= 0).sum()), len(face_instance))
    return Hm3dFaceInstances(
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=np.ascontiguousarray(np.concatenate(faces), dtype=np.int32),
        face_instance=face_instance.astype(np.int32),
    )


# ----------------------------------------------------------------------------------------------------------
# PLY (for Replica's mesh_semantic.ply: trimesh drops custom face properties)
# ----------------------------------------------------------------------------------------------------------

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


@dataclass(frozen=True)
class _PlyProperty:
    name: str
    dtype: str  # numpy type code without byte order
    count_dtype: str | None = None  # list length type; None for scalars


@dataclass(frozen=True)
class _PlyElement:
    name: str
    count: int
    properties: tuple[_PlyProperty, ...]


def _parse_ply_header(path: Path, data: bytes) -> tuple[str, list[_PlyElement], int]:
    if not data.startswith(b"ply"):
        raise AnnotationError(f"{path}: not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header")
    if end < 0:
        raise AnnotationError(f"{path}: PLY header has no 'end_header' line; the file is truncated or not PLY")
    nl = data.find(b"\n", end)
    if nl < 0:
        raise AnnotationError(f"{path}: PLY header has no newline after 'end_header'; the file is truncated")
    try:
        header = data[:end].decode("ascii")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: PLY header is not ASCII (byte {exc.start})") from exc
    fmt = None
    elements: list[_PlyElement] = []
    props: list[_PlyProperty] = []
    for lineno, line in enumerate(header.splitlines(), 1):
        toks = line.split()
        if not toks or toks[0] in ("ply", "comment", "obj_info"):
            continue
        where = _where(path, lineno)
        try:
            if toks[0] == "format":
                fmt = toks[1]
                if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
                    raise AnnotationError(f"{where}: unknown PLY format {fmt!r}")
            elif toks[0] == "element":
                if elements:
                    elements[-1] = _PlyElement(elements[-1].name, elements[-1].count, tuple(props))
                count = int(toks[2])
                if count < 0:
                    raise AnnotationError(f"{where}: negative element count {count}")
                elements.append(_PlyElement(toks[1], count, ()))
                props = []
            elif toks[0] == "property":
                if not elements:
                    raise AnnotationError(f"{where}: 'property' before any 'element'")
                name = toks[4] if toks[1] == "list" else toks[2]
                if name in {p.name for p in props} or name.startswith("__n_"):
                    raise AnnotationError(f"{where}: property {name!r} appears twice in element {elements[-1].name!r}")
                if toks[1] == "list":
                    props.append(_PlyProperty(toks[4], _PLY_TYPES[toks[3]], _PLY_TYPES[toks[2]]))
                else:
                    props.append(_PlyProperty(toks[2], _PLY_TYPES[toks[1]]))
            else:
                raise AnnotationError(f"{where}: unknown PLY header keyword {toks[0]!r}")
        except (IndexError, ValueError) as exc:
            raise AnnotationError(f"{where}: malformed PLY header line {line.strip()!r}") from exc
        except KeyError as exc:
            raise AnnotationError(f"{where}: unknown PLY property type {exc.args[0]!r} in {line.strip()!r}") from exc
    if fmt is None:
        raise AnnotationError(f"{path}: PLY header has no 'format' line")
    if elements:
        elements[-1] = _PlyElement(elements[-1].name, elements[-1].count, tuple(props))
    return fmt, elements, nl + 1


def _read_ply(path: Path) -> dict[str, dict[str, object]]:
    """Every element of a PLY file: name -> {property -> (N,) array, or (counts (N,), flat values) for lists}."""
    if not path.is_file():
        raise AnnotationError(f"PLY file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc}") from exc
    fmt, elements, pos = _parse_ply_header(path, data)
    if fmt == "ascii":
        return _read_ply_ascii(path, data[pos:], elements)
    bo = "<" if fmt == "binary_little_endian" else ">"
    out: dict[str, dict[str, object]] = {}
    for el in elements:
        values, pos = _read_ply_binary_element(path, data, pos, el, bo)
        out[el.name] = values
    if pos != len(data):
        log.warning("%s: %d bytes after the last PLY element are ignored", path, len(data) - pos)
    return out


def _read_ply_binary_element(path: Path, data: bytes, pos: int, el: _PlyElement, bo: str):
    def truncated(need: int) -> AnnotationError:
        return AnnotationError(
            f"{path}: PLY element {el.name!r} ({el.count} records) needs {need} bytes from byte {pos}, "
            f"the file has {len(data) - pos}; the file is truncated"
        )

    if el.count == 0:
        empty: dict[str, object] = {}
        for p in el.properties:
            values = np.zeros(0, bo + p.dtype)
            empty[p.name] = (np.zeros(0, np.int64), values) if p.count_dtype else values
        return empty, pos
    # Fast path: list lengths read from the first record, assumed constant, then verified.
    fields, off = [], pos
    for p in el.properties:
        if p.count_dtype is None:
            fields.append((p.name, bo + p.dtype))
            off += np.dtype(p.dtype).itemsize
        else:
            csize = np.dtype(p.count_dtype).itemsize
            if off + csize > len(data):
                raise truncated(off + csize - pos)
            n = int(np.frombuffer(data, bo + p.count_dtype, 1, off)[0])
            if n < 0:
                raise AnnotationError(f"{path}: PLY element {el.name!r} record 0 has list length {n}")
            fields.append((f"__n_{p.name}", bo + p.count_dtype))
            fields.append((p.name, bo + p.dtype, (n,)))
            off += csize + n * np.dtype(p.dtype).itemsize
    dtype = np.dtype(fields)
    need = dtype.itemsize * el.count
    lists = [p for p in el.properties if p.count_dtype is not None]
    if pos + need <= len(data):
        rec = np.frombuffer(data, dtype, el.count, pos)
        if all(np.all(rec[f"__n_{p.name}"] == rec[f"__n_{p.name}"][0]) for p in lists):
            out = {}
            for p in el.properties:
                if p.count_dtype is None:
                    out[p.name] = rec[p.name].copy()
                else:
                    vals = rec[p.name].reshape(el.count, -1)
                    out[p.name] = (np.full(el.count, vals.shape[1], np.int64), vals.reshape(-1).copy())
            return out, pos + need
    elif not lists:
        raise truncated(need)
    # Slow path: variable-length lists, one record at a time.
    scal = {p.name: np.empty(el.count, bo + p.dtype) for p in el.properties if p.count_dtype is None}
    counts = {p.name: np.empty(el.count, np.int64) for p in lists}
    flat: dict[str, list[np.ndarray]] = {p.name: [] for p in lists}
    off = pos
    try:
        for i in range(el.count):
            for p in el.properties:
                if p.count_dtype is None:
                    scal[p.name][i] = np.frombuffer(data, bo + p.dtype, 1, off)[0]
                    off += np.dtype(p.dtype).itemsize
                else:
                    n = int(np.frombuffer(data, bo + p.count_dtype, 1, off)[0])
                    if n < 0:
                        raise AnnotationError(f"{path}: PLY element {el.name!r} record {i} has list length {n}")
                    off += np.dtype(p.count_dtype).itemsize
                    counts[p.name][i] = n
                    flat[p.name].append(np.frombuffer(data, bo + p.dtype, n, off))
                    off += n * np.dtype(p.dtype).itemsize
    except ValueError:
        raise AnnotationError(
            f"{path}: PLY element {el.name!r} ends inside record {i} of {el.count}; the file is truncated"
        ) from None
    out = dict(scal)
    for p in lists:
        values = np.concatenate(flat[p.name]) if flat[p.name] else np.zeros(0, bo + p.dtype)
        out[p.name] = (counts[p.name], values)
    return out, off


def _read_ply_ascii(path: Path, body: bytes, elements: list[_PlyElement]):
    try:
        tokens = body.decode("ascii").split()
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: ASCII PLY body has a non-ASCII byte at offset {exc.start}") from exc
    pos = 0
    out: dict[str, dict[str, object]] = {}
    for el in elements:
        names = [p.name for p in el.properties]
        try:
            if all(p.count_dtype is None for p in el.properties):
                n = el.count * len(names)
                if pos + n > len(tokens):
                    raise IndexError
                block = np.asarray(tokens[pos : pos + n], dtype=np.float64).reshape(el.count, len(names))
                pos += n
                out[el.name] = {p.name: block[:, j].astype(p.dtype) for j, p in enumerate(el.properties)}
                continue
            scal = {p.name: np.empty(el.count, p.dtype) for p in el.properties if p.count_dtype is None}
            counts = {p.name: np.empty(el.count, np.int64) for p in el.properties if p.count_dtype}
            flat = {p.name: [] for p in el.properties if p.count_dtype}
            for i in range(el.count):
                for p in el.properties:
                    if p.count_dtype is None:
                        scal[p.name][i] = float(tokens[pos])
                        pos += 1
                    else:
                        k = int(tokens[pos])
                        if k < 0 or pos + 1 + k > len(tokens):
                            raise IndexError
                        counts[p.name][i] = k
                        flat[p.name].extend(tokens[pos + 1 : pos + 1 + k])
                        pos += 1 + k
            res: dict[str, object] = dict(scal)
            for p in el.properties:
                if p.count_dtype:
                    res[p.name] = (counts[p.name], np.asarray(flat[p.name], dtype=np.float64).astype(p.dtype))
            out[el.name] = res
        except IndexError:
            raise AnnotationError(f"{path}: ASCII PLY ends inside element {el.name!r}; the file is truncated") from None
        except ValueError as exc:
            raise AnnotationError(f"{path}: non-numeric value in ASCII PLY element {el.name!r}: {exc}") from None
    return out


def _triangulate(counts: np.ndarray, flat: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons: [0, 1, 2], [0, 2, 3], ... (habitat's quad split). Returns (tris, source polygon)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 3:
        bad = int(np.flatnonzero(counts < 3)[0])
        raise AnnotationError(f"{path}: face {bad} has {int(counts[bad])} vertices; faces need at least 3")
    starts = np.cumsum(counts) - counts
    n_tri = counts - 2
    poly = np.repeat(np.arange(len(counts)), n_tri)
    k = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    s = starts[poly]
    flat = np.asarray(flat, dtype=np.int64)
    tris = np.stack([flat[s], flat[s + k], flat[s + k + 1]], axis=1)
    return tris, poly


# ----------------------------------------------------------------------------------------------------------
# Replica
# ----------------------------------------------------------------------------------------------------------


class ReplicaSemantic(NamedTuple):
    """Replica's semantic mesh.

    Attributes:
        vertices: float32 (V, 3) metres, in the frame chosen by ``up`` (see :func:`read_replica_semantic`).
        faces: int32 (F, 3) triangles (each PLY quad split into [0, 1, 2], [0, 2, 3]).
        face_object: int32 (F,) object id (``info_semantic.json`` ``objects[].id``) of each triangle.
        object_classes: object id -> class name (via the object's ``class_id`` in ``classes``); empty
            without an ``info_semantic.json``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_object: np.ndarray
    object_classes: dict[int, str]


class ReplicaInfo(NamedTuple):
    """Replica's ``info_semantic.json``.

    Attributes:
        classes: class id -> class name.
        object_class: object id -> class id.
    """

    classes: dict[int, str]
    object_class: dict[int, int]


def _json_int(value, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def read_replica_info(info_json_path: PathLike) -> ReplicaInfo:
    """Read Replica's ``habitat/info_semantic.json``: ``classes`` [{id, name}] and ``objects`` [{id, class_id}].

    Args:
        info_json_path: the ``info_semantic.json`` file.

    Returns:
        Class names by class id and each object's class id.

    Raises:
        AnnotationError: not JSON, no ``classes`` list, or an entry without an integer ``id`` /
            ``class_id`` or a string ``name``.
    """
    path = Path(info_json_path)
    data = _load_json(path, "Replica info_semantic.json")
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise AnnotationError(f"{path}: no 'classes' list; Replica's info_semantic.json has 'classes' and 'objects'")
    classes: dict[int, str] = {}
    for i, c in enumerate(data["classes"]):
        where = f"{path}: classes[{i}]"
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise AnnotationError(f"{where} needs 'id' and 'name', got {c!r}"[:200])
        if not isinstance(c["name"], str):
            raise AnnotationError(f"{where}: 'name' must be a string, got {c['name']!r}")
        classes[_json_int(c["id"], where, "id")] = c["name"]
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise AnnotationError(f"{path}: 'objects' must be a list, got {type(objects).__name__}")
    object_class: dict[int, int] = {}
    for i, o in enumerate(objects):
        where = f"{path}: objects[{i}]"
        if not isinstance(o, dict) or "id" not in o or "class_id" not in o:
            raise AnnotationError(f"{where} needs 'id' and 'class_id'")
        object_class[_json_int(o["id"], where, "id")] = _json_int(o["class_id"], where, "class_id")
    unknown = sorted({c for c in object_class.values() if c not in classes})
    if unknown:
        log.warning("%s: objects refer to class ids missing from 'classes': %s", path, unknown[:10])
    return ReplicaInfo(classes=classes, object_class=object_class)


def read_replica_semantic(
    ply_path: PathLike, info_json_path: PathLike | None = None, *, up: UpAxis = UpAxis.Y
) -> ReplicaSemantic:
    """Read Replica's ``habitat/mesh_semantic.ply`` (and ``info_semantic.json``).

    The PLY (binary little endian in the release; ASCII and big endian read too) has vertices
    ``x, y, z`` (+ normals, colours) and faces ``vertex_indices`` (quads in the release) with an
    ``object_id`` per face. Replica meshes are stored Z-up (-Z gravity: habitat-sim
    ``ReplicaInstanceMeshData.cpp``). Like :func:`envsim.scenes.scene.load_scene`, ``up`` names the file's up
    axis and defaults to Y (coordinates as stored, for callers that apply the stage's own frame
    rotation); pass ``up=UpAxis.Z`` to get the toolkit's Y-up world directly.

    Args:
        ply_path: the ``mesh_semantic.ply`` file.
        info_json_path: the ``info_semantic.json`` file, or None to skip object classes.
        up: the PLY's up axis; Z maps (x, y, z) -> (x, z, -y).

    Returns:
        vertices float32 (V, 3) metres, triangles int32 (F, 3), face_object int32 (F,), and
        {object id: class name}. Class ids and the class table come from :func:`read_replica_info`.

    Raises:
        AnnotationError: malformed or truncated PLY, missing ``x``/``y``/``z``, ``vertex_indices`` or
            ``object_id``, indices out of range, or a malformed ``info_semantic.json``.
    """
    path = Path(ply_path)
    info = read_replica_info(info_json_path) if info_json_path is not None else None
    elements = _read_ply(path)
    if "vertex" not in elements or "face" not in elements:
        raise AnnotationError(f"{path}: PLY needs 'vertex' and 'face' elements, it has {sorted(elements)}")
    vel, fel = elements["vertex"], elements["face"]
    missing = [k for k in ("x", "y", "z") if k not in vel]
    if missing:
        raise AnnotationError(f"{path}: vertex element lacks properties {missing}")
    if "vertex_indices" not in fel or not isinstance(fel["vertex_indices"], tuple):
        raise AnnotationError(f"{path}: face element has no list property 'vertex_indices'")
    if "object_id" not in fel or isinstance(fel["object_id"], tuple):
        raise AnnotationError(
            f"{path}: face element has no 'object_id' property; use Replica's habitat/mesh_semantic.ply "
            "(mesh.ply carries no object ids)"
        )
    vertices = np.stack([np.asarray(vel[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1)
    if not np.all(np.isfinite(vertices)):
        raise AnnotationError(f"{path}: non-finite (NaN or inf) vertex coordinates")
    counts, flat = fel["vertex_indices"]
    tris, poly = _triangulate(counts, flat, path)
    if tris.size and (tris.min() < 0 or tris.max() >= len(vertices)):
        raise AnnotationError(f"{path}: face vertex indices outside 0..{len(vertices) - 1}")
    face_object = np.asarray(fel["object_id"]).astype(np.int64)[poly]
    object_classes: dict[int, str] = {}
    if info is not None:
        object_classes = {o: info.classes[c] for o, c in info.object_class.items() if c in info.classes}
        known = np.fromiter(info.object_class, np.int64, len(info.object_class))
        unknown = np.setdiff1d(np.unique(face_object), known)
        if unknown.size:
            log.warning(
                "%s: %d object ids are not in info_semantic.json objects (e.g. %s)",
                path, unknown.size, unknown[:5].tolist(),
            )
    if up is UpAxis.Z:
        vertices = z_up_to_y_up(vertices)
    return ReplicaSemantic(
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=np.ascontiguousarray(tris, dtype=np.int32),
        face_object=face_object.astype(np.int32),
        object_classes=object_classes,
    )
