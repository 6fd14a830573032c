"""Reading annotation files: text and JSON, with errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envsim.scenes.annotations.labels import AnnotationError, PathLike

__all__ = ["file_location", "load_json", "read_text"]


def file_location(path: PathLike, line: int | None = None) -> str:
    """``path:line`` (1-based line), or ``path`` when there is no line: how error messages name a place."""
    return f"{path}:{line}" if line is not None else str(path)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of an annotation file (a BOM is dropped).

    Args:
        path: the file.
        what: what the file should be (``"MP3D .house file"``), for the error messages.

    Returns:
        The file's text.

    Raises:
        AnnotationError: the file is missing, unreadable or not UTF-8.
    """
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


def load_json(path: Path, what: str) -> Any:
    """The parsed JSON of an annotation file.

    Args:
        path: the file.
        what: what the file should be, for the error messages.

    Returns:
        The JSON value (dict, list, str, number, bool or None).

    Raises:
        AnnotationError: the file is missing, unreadable, not UTF-8 or not JSON (naming the line).
    """
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{file_location(path, exc.lineno)}: not valid JSON ({exc.msg}, column {exc.colno})"
        ) from exc
