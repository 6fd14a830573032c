"""Matterport3D ``house_segmentations/<id>.house`` files: regions (rooms) and objects, in the Y-up world.

The format is ASCII 1.1, Z-up, metres: regions with their floor polygons, label codes and heights, and
objects with oriented boxes. Field layout from niessner/Matterport ``data_organization.md`` and the
reference reader ``MPHouse::ReadAsciiFile`` in ``code/gaps/apps/mpview/mp.cpp``; habitat-sim reads the same
lines in ``Mp3dSemanticScene.cpp``. Z-up points map to the world as (x, y, z) -> (x, z, -y), so a floor
point (x, y) lands at world (x, z) = (x, -y).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envsim.scenes.annotations.files import file_location, read_text
from envsim.scenes.annotations.labels import (
    AnnotationError,
    PathLike,
    load_room_labels,
    lookup_room_label,
    unmapped_label,
)
from envsim.scenes.scene import Room, z_up_to_y_up

log = logging.getLogger(__package__)  # the package's logger, shared by all its readers

__all__ = ["MP3D_REGION_CODES", "Mp3dHouse", "Mp3dObject", "Mp3dRegion", "read_mp3d_house", "read_mp3d_house_full"]

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
        return AnnotationError(f"{file_location(self.path, self.lineno)}: {msg}")

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


@dataclass
class _HouseRecords:
    """The records of a ``.house`` file as read line by line, before their cross-references are checked."""

    name: str = ""
    counts: dict[str, int] | None = None  # from the 'H' line; None before it
    seen: dict[str, int] = field(default_factory=lambda: {c: 0 for c in _HOUSE_RECORDS})
    # line, index, level, code, bbox, height
    regions: list[tuple[int, int, int, str, np.ndarray, float]] = field(default_factory=list)
    surfaces: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # line, region, normal
    vertices: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # line, surface, position
    categories: list[tuple[str, str]] = field(default_factory=list)  # raw name, mpcat40 name
    # line, region, category, center, axis0, axis1, radii
    objects: list[tuple[int, int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


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
    records = _read_house_records(path, read_text(path, "MP3D .house file").splitlines(), codes)
    region_surfaces, surface_vertices = _link_surfaces(path, records)
    regions = tuple(
        _house_region(path, records, r_idx, region_surfaces[r_idx], surface_vertices, table)
        for r_idx in range(len(records.regions))
    )
    objects = _house_objects(path, records)
    log.debug("%s: %d regions, %d objects", path, len(regions), len(objects))
    return Mp3dHouse(name=records.name, regions=regions, objects=objects)


def _read_house_records(path: Path, lines: list[str], codes: set[str]) -> _HouseRecords:
    """Read the lines of a ``.house`` file, each checked on its own, and check the record counts."""
    first = next(((i, ln) for i, ln in enumerate(lines, 1) if ln.strip()), None)
    if first is None:
        raise AnnotationError(f"{path}: empty file; expected an MP3D .house file starting with 'ASCII 1.1'")
    if first[1].split() != ["ASCII", "1.1"]:
        raise AnnotationError(
            f"{file_location(path, first[0])}: header is {first[1].strip()[:40]!r}, expected 'ASCII 1.1' "
            "(a Matterport3D house_segmentations/<id>.house file)"
        )
    records = _HouseRecords()
    for lineno in range(first[0] + 1, len(lines) + 1):
        toks = lines[lineno - 1].split()
        if toks:
            _read_house_line(records, _Tokens(path, lineno, toks), codes)
    _check_counts(path, records)
    return records


def _read_house_line(records: _HouseRecords, t: _Tokens, codes: set[str]) -> None:
    """Add one non-empty line to ``records``."""
    toks = t.tokens
    rec = toks[0]
    if rec not in records.seen:
        raise t.fail(f"unknown record type {rec!r}; .house lines start with one of {', '.join(_HOUSE_RECORDS)}")
    if rec != "H" and records.counts is None:
        raise t.fail(f"{rec!r} line before the 'H' header line; the second line of a .house file is 'H ...'")
    need = _HOUSE_MIN_FIELDS.get(rec, 1)
    if len(toks) < need:
        raise t.fail(f"truncated {rec!r} line: {len(toks)} fields, expected at least {need}")
    records.seen[rec] += 1
    if rec == "H":
        if records.counts is not None:
            raise t.fail("second 'H' line; a .house file has one header line")
        records.name = "" if toks[1] == "-" else toks[1]
        keys = ("I", "panoramas", "V", "S", "E", "O", "C", "R", "portals", "L")
        records.counts = {k: t.int(3 + i, f"#{k} count") for i, k in enumerate(keys)}
        if any(v < 0 for v in records.counts.values()):
            raise t.fail("negative record count in the 'H' line")
    elif rec == "R":
        records.regions.append(_region_record(t, codes))
    elif rec == "S":
        records.surfaces.append((t.lineno, t.int(2, "region_index"), t.floats(8, 3, "normal")))
        t.floats(5, 3, "position")
        t.floats(11, 6, "bounding box")
    elif rec == "V":
        records.vertices.append((t.lineno, t.int(2, "surface_index"), t.floats(4, 3, "position")))
    elif rec == "C":
        t.int(1, "category_index")
        t.int(2, "category_mapping_index")
        t.int(4, "mpcat40_index")
        raw_name = "" if toks[3] == "-" else toks[3].replace("#", " ")
        mpcat = "" if toks[5] == "-" else toks[5].replace("#", " ")
        records.categories.append((raw_name, mpcat))
    elif rec == "O":
        records.objects.append(
            (
                t.lineno,
                t.int(2, "region_index"),
                t.int(3, "category_index"),
                t.floats(4, 3, "center"),
                t.floats(7, 3, "axis0"),
                t.floats(10, 3, "axis1"),
                t.floats(13, 3, "radii"),
            )
        )


def _region_record(t: _Tokens, codes: set[str]) -> tuple[int, int, int, str, np.ndarray, float]:
    """(line, index, level, code, bbox, height) of an ``R`` line; bbox float64 (6,) min then max, metres."""
    index = t.int(1, "region_index")
    level = t.int(2, "level_index")
    code = t.tokens[5]
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
    return t.lineno, index, level, code, bbox, height


def _check_counts(path: Path, records: _HouseRecords) -> None:
    """Refuse a file without an ``H`` line or whose record counts differ from it (a truncated file)."""
    if records.counts is None:
        raise AnnotationError(f"{path}: no 'H' header line after 'ASCII 1.1'; the file is not a .house file")
    expected = dict(records.counts)
    expected["P"] = expected.pop("portals") + expected.pop("panoramas")
    for rec, want in expected.items():
        if records.seen[rec] != want:
            raise AnnotationError(
                f"{path}: the 'H' line declares {want} {rec!r} records but the file has {records.seen[rec]}; "
                "the file is truncated or was edited: re-download it or fix the counts"
            )


def _link_surfaces(path: Path, records: _HouseRecords) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    """Each region's surface indices and each surface's vertex positions (Z-up, metres), in file order."""
    n_regions, n_surfaces = len(records.regions), len(records.surfaces)
    region_surfaces: list[list[int]] = [[] for _ in range(n_regions)]
    for s_idx, (lineno, reg, _) in enumerate(records.surfaces):
        if not -1 <= reg < n_regions:
            raise AnnotationError(
                f"{file_location(path, lineno)}: surface refers to region {reg}, the file has {n_regions}"
            )
        if reg >= 0:
            region_surfaces[reg].append(s_idx)
    surface_vertices: list[list[np.ndarray]] = [[] for _ in records.surfaces]
    for lineno, surf, pos in records.vertices:
        if not -1 <= surf < n_surfaces:
            raise AnnotationError(
                f"{file_location(path, lineno)}: vertex refers to surface {surf}, the file has {n_surfaces}"
            )
        if surf >= 0:
            surface_vertices[surf].append(pos)
    return region_surfaces, surface_vertices


def _house_region(
    path: Path,
    records: _HouseRecords,
    r_idx: int,
    surfaces: list[int],
    surface_vertices: list[list[np.ndarray]],
    table: dict[str, dict[str, str]],
) -> Mp3dRegion:
    """Region ``r_idx`` as a room in the Y-up world; ``surfaces`` are its surface indices."""
    lineno, _index, level, code, bbox, height = records.regions[r_idx]
    polygon, from_surface = None, False
    for s_idx in surfaces:
        if records.surfaces[s_idx][2][2] < 0.9:
            continue
        pts = surface_vertices[s_idx]
        if len(pts) >= 3:
            xy = np.stack(pts)[:, :2]
            polygon, from_surface = np.stack([xy[:, 0], -xy[:, 1]], axis=1), True
        else:
            log.warning(
                "%s: floor surface of region %d has %d vertices; using its bounding box",
                file_location(path, lineno), r_idx, len(pts),
            )
        break
    if polygon is None:
        x0, y0, x1, y1 = bbox[0], bbox[1], bbox[3], bbox[4]
        polygon = np.array([[x0, -y0], [x1, -y0], [x1, -y1], [x0, -y1]], dtype=np.float64)
    floor = float(bbox[2])
    ceiling = floor + height if height > 0 else float(bbox[5])
    mapped = lookup_room_label("mp3d", code, table)
    label = mapped if mapped else unmapped_label(MP3D_REGION_CODES.get(code, code))
    room = Room(label=label, polygon=np.ascontiguousarray(polygon, np.float64), floor=floor, ceiling=ceiling)
    return Mp3dRegion(index=r_idx, level=level, code=code, room=room, from_surface=from_surface)


def _house_objects(path: Path, records: _HouseRecords) -> tuple[Mp3dObject, ...]:
    """The objects in the Y-up world, their region and category references checked."""
    n_regions, categories = len(records.regions), records.categories
    out_objects = []
    for o_idx, (lineno, reg, cat, center, a0, a1, radii) in enumerate(records.objects):
        if not -1 <= reg < n_regions:
            raise AnnotationError(
                f"{file_location(path, lineno)}: object refers to region {reg}, the file has {n_regions}"
            )
        if not -1 <= cat < len(categories):
            raise AnnotationError(
                f"{file_location(path, lineno)}: object refers to category {cat}, the file has {len(categories)}"
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
    return tuple(out_objects)


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
