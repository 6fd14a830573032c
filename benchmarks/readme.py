"""Generated sections of the README: the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``."""

from __future__ import annotations

import os
from pathlib import Path

from envsim.provenance import atomic_write


def replace_section(path: str | os.PathLike, name: str, block: str) -> None:
    """Replace what lies between the ``name`` markers in ``path`` by ``block``; everything outside the markers
    stays byte for byte. The file is rewritten atomically.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    path = Path(path)
    text = path.read_text()
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{path} needs exactly one {begin} line and one {end} line around the generated section")
    head, rest = text.split(begin)
    if end not in rest:
        raise ValueError(f"{path}: {end} must come after {begin}")
    _, tail = rest.split(end)
    atomic_write(path, f"{head}{begin}\n{block}{end}{tail}")
