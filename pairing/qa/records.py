"""The files of a QA export and how to read them back: names, the record line, JSON-lines readers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

QA_FORMAT = "ess-qa/1"
RECORDS_NAME = "qa.jsonl"
MANIFEST_NAME = "manifest.json"
IMAGES_DIR = "images"
SHEET_NAME = "contact_sheet.png"


class QAError(ValueError):
    """A QA export that cannot be made as asked (wrong folder, a task the dataset cannot carry)."""


def manifest_format(path: str | os.PathLike) -> str | None:
    """The ``format`` of a JSON manifest, None when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data.get("format") if isinstance(data, dict) else None


def record_line(record: Mapping[str, Any]) -> str:
    """One ``qa.jsonl`` line (keys in record order, no trailing newline)."""
    return json.dumps(record, allow_nan=False)


def read_jsonl(path: str | os.PathLike, what: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, one per non-blank line.

    Raises:
        QAError: the file is missing, or a line is not a JSON object (named by its number).
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise QAError(f"{what} {path} does not exist") from None
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAError(f"{path}:{i} is not JSON ({exc.msg}); give one JSON object per line") from None
        if not isinstance(value, dict):
            raise QAError(f"{path}:{i} is not a JSON object; give one object per line")
        out.append(value)
    return out


def read_records(qa_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a QA export folder.

    Raises:
        QAError: the folder holds no QA export.
    """
    qa_dir = Path(qa_dir)
    if manifest_format(qa_dir / MANIFEST_NAME) != QA_FORMAT:
        raise QAError(f"{qa_dir} holds no QA export (no {MANIFEST_NAME} of format {QA_FORMAT}); "
                      "write one with `ess qa`")
    return read_jsonl(qa_dir / RECORDS_NAME, "QA records")


def read_responses(path: str | os.PathLike) -> dict[str, str]:
    """Model outputs from a JSON-lines file of ``{"id": <record id>, "response": <text>}``.

    Raises:
        QAError: a line lacks ``id`` or ``response`` (or they are not strings), or an id repeats.
    """
    out: dict[str, str] = {}
    for i, row in enumerate(read_jsonl(path, "responses file"), 1):
        qid, text = row.get("id"), row.get("response")
        if not isinstance(qid, str) or not isinstance(text, str):
            raise QAError(f"{path}: response {i} needs \"id\" (a record id) and \"response\" (the model's text)")
        if qid in out:
            raise QAError(f"{path}: record id {qid!r} is answered twice; keep one response per id")
        out[qid] = text
    return out
