"""Room-label tables: dataset room names and codes mapped onto the toolkit's room names.

The packaged table is ``data_manifests/room_labels.toml`` (:data:`DEFAULT_ROOM_LABELS`), one TOML table per
dataset family (``[mp3d]``, ``[hm3d]``, ``[habitat]``, ...); users edit it or pass their own. Also home of
:class:`AnnotationError`, which every annotation reader raises.
"""

from __future__ import annotations

import os
from pathlib import Path

import tomllib

from envsim.scenes.rooms import ROOM_NAMES, room_index
from envsim.scenes.scene import SceneError

__all__ = [
    "DEFAULT_ROOM_LABELS",
    "AnnotationError",
    "PathLike",
    "load_room_labels",
    "lookup_room_label",
    "map_room_label",
    "unmapped_label",
]

PathLike = str | os.PathLike

DEFAULT_ROOM_LABELS = Path(__file__).resolve().parents[3] / "data_manifests" / "room_labels.toml"
"""The packaged room-label table (``data_manifests/room_labels.toml`` next to the ``envsim`` package)."""


class AnnotationError(SceneError):
    """An annotation file that cannot be used; the message names the file, the line and what is wrong."""


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


def unmapped_label(name: str) -> str:
    """A label that keeps the dataset's name but never reads as a toolkit room (index -1)."""
    return name if room_index(name) < 0 else f"{name} (unmapped)"


def lookup_room_label(family: str, name: str, table: dict[str, dict[str, str]]) -> str | None:
    """The table's value for ``name`` in ``family`` ("" = explicitly unknown), or None when the table omits it.

    Raises:
        AnnotationError: ``table`` has no ``family`` table.
    """
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
    value = lookup_room_label(family, name, table)
    if value:
        return value
    if value is None and room_index(name) >= 0:
        return ROOM_NAMES[room_index(name)]
    return unmapped_label(name)
