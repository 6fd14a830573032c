"""PLY files: one header parser, and the reader of the element data after the header.

A PLY file (Greg Turk's polygon file format) starts with an ASCII header: ``ply``, a ``format`` line
(``ascii``, ``binary_little_endian`` or ``binary_big_endian``), then per element an ``element <name> <count>``
line followed by its ``property <type> <name>`` and ``property list <count type> <type> <name>`` lines, and
``end_header``. The body holds ``count`` records per element, in header order.

The header is read by one parser under two sets of rules:

* :func:`read_ply_header`, strict: any line outside the format is an error. For readers that need every
  property, such as Replica's ``mesh_semantic.ply`` (trimesh drops its per-face ``object_id``).
* :func:`scan_ply_header`, lenient: for sizing a mesh before loading it
  (:func:`envsim.scenes.load.load_scene`); it skips what it does not understand, gives up (None) where it
  cannot tell the record sizes, and fails only on an element count that is not a number.

:func:`read_ply_body` reads the records of a strictly read header. Problems are :class:`PlyError` (a
``ValueError``) without the file's name: callers add it and raise their own error type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PLY_FORMATS",
    "PLY_TYPES",
    "PlyElement",
    "PlyError",
    "PlyHeader",
    "PlyProperty",
    "PlyValues",
    "read_ply_body",
    "read_ply_header",
    "scan_ply_header",
]

PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
"""PLY scalar type name -> numpy type code without byte order (``"float"`` -> ``"f4"``)."""

PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
"""The body formats a ``format`` line may name."""

PlyValues = np.ndarray | tuple[np.ndarray, np.ndarray]
"""One property of one element: (N,) values, or for a list property (lengths int64 (N,), flat values)."""

_IGNORED_KEYWORDS = ("ply", "comment", "obj_info")
_END_HEADER = re.compile(rb"end_header[ \t]*(\r\n|\r|\n)")


class PlyError(ValueError):
    """A PLY file that breaks the format; the message does not name the file.

    Attributes:
        line: 1-based header line the problem is on, or None when it is not one header line.
        text: that header line, stripped, or None.
    """

    def __init__(self, message: str, line: int | None = None, text: str | None = None):
        super().__init__(message)
        self.line = line
        self.text = text


@dataclass(frozen=True)
class PlyProperty:
    """One ``property`` line of a PLY header.

    Attributes:
        name: property name.
        value_type: PLY type name of the values (``"float"``, ``"int"``, ...).
        count_type: PLY type name of a list's length field; None for a scalar property.
    """

    name: str
    value_type: str
    count_type: str | None = None

    @property
    def dtype(self) -> str:
        """numpy type code of the values, without byte order (``"f4"``)."""
        return PLY_TYPES[self.value_type]

    @property
    def count_dtype(self) -> str | None:
        """numpy type code of a list's length field, None for a scalar property."""
        return PLY_TYPES[self.count_type] if self.count_type is not None else None

    @property
    def fixed_size(self) -> int:
        """Bytes every binary record spends on this property: the scalar, or a list's length field."""
        return np.dtype(PLY_TYPES[self.count_type or self.value_type]).itemsize


@dataclass(frozen=True)
class PlyElement:
    """One ``element`` line of a PLY header with its properties.

    Attributes:
        name: element name (``"vertex"``, ``"face"``, ...).
        count: number of records in the body.
        properties: in header order, i.e. the order of the fields within a record.
    """

    name: str
    count: int
    properties: tuple[PlyProperty, ...]


@dataclass(frozen=True)
class PlyHeader:
    """A PLY header.

    Attributes:
        format: ``"ascii"``, ``"binary_little_endian"`` or ``"binary_big_endian"``; a leniently read
            header keeps whatever its ``format`` line says, ``""`` without one.
        elements: in header order, i.e. the order of their records in the body.
        length: bytes of the header through the line break after ``end_header``: the offset of the body.
    """

    format: str
    elements: tuple[PlyElement, ...]
    length: int


@dataclass
class _Draft:
    """A header being read: the format and the elements so far (name, count, properties)."""

    format: str | None = None
    elements: list[tuple[str, int, list[PlyProperty]]] = field(default_factory=list)


def read_ply_header(data: bytes) -> PlyHeader:
    """Read a PLY header by the format's rules.

    Args:
        data: the file's bytes (at least the whole header).

    Returns:
        The header; ``length`` is the offset of the first byte after the newline that ends ``end_header``.

    Raises:
        PlyError: no ``ply`` magic, no ``end_header`` line, a non-ASCII header, a line that is not a
            ``format``/``element``/``property``/``comment``/``obj_info`` line as PLY defines it (a
            negative count, a property before any element or named twice, an unknown format), an
            unknown property type, or no ``format`` line.
    """
    header = _parse_header(data, strict=True)
    assert header is not None  # the strict rules raise instead of giving up
    return header


def scan_ply_header(data: bytes) -> PlyHeader | None:
    """Read a PLY header leniently, to size a file's records without trusting the file.

    Differences from :func:`read_ply_header`: the header ends at the first ``end_header`` followed by
    spaces and a line break (``\\n``, ``\\r\\n`` or ``\\r``); non-ASCII bytes, unknown keywords and formats,
    ``property`` lines before any element and ``element`` lines of other than 3 words are skipped; a
    list's value type is not checked (only its length field counts towards a record's fixed size).

    Args:
        data: the file's first bytes (the header must lie within them).

    Returns:
        The header, or None when ``data`` does not start with ``ply``, holds no ``end_header`` line, or
        has a ``property`` line after an element that is not ``property <type> <name>`` or
        ``property list <count type> <type> <name>`` with known types.

    Raises:
        PlyError: an ``element`` line of 3 words whose count is not a non-negative integer; its ``text``
            is the line.
    """
    return _parse_header(data, strict=False)


def _parse_header(data: bytes, *, strict: bool) -> PlyHeader | None:
    """The one header parser; ``strict`` picks the rules of :func:`read_ply_header` or :func:`scan_ply_header`."""
    span = _header_span(data, strict=strict)
    if span is None:
        return None
    text_end, length = span
    try:
        header_text = data[:text_end].decode("ascii", "strict" if strict else "replace")
    except UnicodeDecodeError as exc:
        raise PlyError(f"PLY header is not ASCII (byte {exc.start})") from exc
    draft = _Draft()
    for lineno, line in enumerate(header_text.splitlines(), 1):
        toks = line.split()
        if not toks or toks[0] in _IGNORED_KEYWORDS:
            continue
        text = line.strip()
        try:
            if strict:
                _strict_line(draft, toks)
            elif not _lenient_line(draft, toks):
                return None
        except (IndexError, ValueError) as exc:  # the specific reason is kept as the cause, not in the message
            raise PlyError(f"malformed PLY header line {text!r}", lineno, text) from exc
        except KeyError as exc:
            raise PlyError(f"unknown PLY property type {exc.args[0]!r} in {text!r}", lineno, text) from exc
    if draft.format is None and strict:
        raise PlyError("PLY header has no 'format' line")
    elements = tuple(PlyElement(name, count, tuple(props)) for name, count, props in draft.elements)
    return PlyHeader(format=draft.format or "", elements=elements, length=length)


def _header_span(data: bytes, *, strict: bool) -> tuple[int, int] | None:
    """(offset of ``end_header``, offset of the body); None (lenient rules only) when there is no header."""
    if not strict:
        end = _END_HEADER.search(data)
        if not data.startswith(b"ply") or end is None:
            return None
        return end.start(), end.end()
    if not data.startswith(b"ply"):
        raise PlyError("not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header")
    if end < 0:
        raise PlyError("PLY header has no 'end_header' line; the file is truncated or not PLY")
    nl = data.find(b"\n", end)
    if nl < 0:
        raise PlyError("PLY header has no newline after 'end_header'; the file is truncated")
    return end, nl + 1


def _strict_line(draft: _Draft, toks: list[str]) -> None:
    """Add one header line by the format's rules: IndexError or ValueError when it is malformed, KeyError
    (the type name) for an unknown property type."""
    keyword = toks[0]
    if keyword == "format":
        if toks[1] not in PLY_FORMATS:
            raise ValueError(f"unknown PLY format {toks[1]!r}")
        draft.format = toks[1]
    elif keyword == "element":
        count = int(toks[2])
        if count < 0:
            raise ValueError(f"negative element count {count}")
        draft.elements.append((toks[1], count, []))
    elif keyword == "property":
        if not draft.elements:
            raise ValueError("'property' before any 'element'")
        props = draft.elements[-1][2]
        is_list = toks[1] == "list"
        name = toks[4] if is_list else toks[2]
        if name in {p.name for p in props} or name.startswith("__n_"):  # __n_* names the binary reader's lengths
            raise ValueError(f"property {name!r} appears twice")
        types = (toks[3], toks[2]) if is_list else (toks[1],)
        for type_name in types:
            if type_name not in PLY_TYPES:
                raise KeyError(type_name)
        props.append(PlyProperty(name, toks[3], toks[2]) if is_list else PlyProperty(name, toks[1]))
    else:
        raise ValueError(f"unknown PLY header keyword {keyword!r}")


def _lenient_line(draft: _Draft, toks: list[str]) -> bool:
    """Add one header line if it is understood; False when a property's size cannot be told, ValueError
    for an element count that is not a number."""
    keyword = toks[0]
    if keyword == "format" and len(toks) > 1:
        draft.format = toks[1]
    elif keyword == "element" and len(toks) == 3:
        if not toks[2].isdigit():
            raise ValueError(f"element count {toks[2]!r} is not a number")
        draft.elements.append((toks[1], int(toks[2]), []))
    elif keyword == "property" and draft.elements:
        if len(toks) == 5 and toks[1] == "list" and toks[2] in PLY_TYPES:
            draft.elements[-1][2].append(PlyProperty(toks[4], toks[3], toks[2]))
        elif len(toks) == 3 and toks[1] in PLY_TYPES:
            draft.elements[-1][2].append(PlyProperty(toks[2], toks[1]))
        else:
            return False
    return True


# ----------------------------------------------------------------------------------------------------------
# Body
# ----------------------------------------------------------------------------------------------------------


def read_ply_body(data: bytes, header: PlyHeader) -> tuple[dict[str, dict[str, PlyValues]], int]:
    """Read every element's records after a header from :func:`read_ply_header`.

    Args:
        data: the whole file's bytes.
        header: its header.

    Returns:
        element name -> {property name -> values} (see :data:`PlyValues`; ASCII values are parsed as
        float64 and cast to the property's type, binary values keep the file's byte order), and the
        number of bytes after the last binary record that were not read (0 for ASCII, whose trailing
        tokens are not counted).

    Raises:
        PlyError: the body ends inside an element, a list has a negative length, or an ASCII body has a
            non-ASCII byte or a non-numeric value.
    """
    if header.format == "ascii":
        return _read_ascii(data[header.length :], header.elements), 0
    bo = "<" if header.format == "binary_little_endian" else ">"
    pos = header.length
    out: dict[str, dict[str, PlyValues]] = {}
    for el in header.elements:
        out[el.name], pos = _read_binary_element(data, pos, el, bo)
    return out, len(data) - pos


def _read_binary_element(data: bytes, pos: int, el: PlyElement, bo: str) -> tuple[dict[str, PlyValues], int]:
    """One element's records from byte ``pos`` with byte order ``bo``; returns them and the offset after them."""
    if el.count == 0:
        empty: dict[str, PlyValues] = {}
        for p in el.properties:
            values = np.zeros(0, bo + p.dtype)
            empty[p.name] = (np.zeros(0, np.int64), values) if p.count_dtype else values
        return empty, pos
    # Fast path: list lengths read from the first record, assumed constant, then verified.
    dtype = _first_record_dtype(data, pos, el, bo)
    need = dtype.itemsize * el.count
    lists = [p for p in el.properties if p.count_dtype is not None]
    if pos + need <= len(data):
        rec = np.frombuffer(data, dtype, el.count, pos)
        if all(np.all(rec[f"__n_{p.name}"] == rec[f"__n_{p.name}"][0]) for p in lists):
            out: dict[str, PlyValues] = {}
            for p in el.properties:
                if p.count_dtype is None:
                    out[p.name] = rec[p.name].copy()
                else:
                    vals = rec[p.name].reshape(el.count, -1)
                    out[p.name] = (np.full(el.count, vals.shape[1], np.int64), vals.reshape(-1).copy())
            return out, pos + need
    elif not lists:
        raise _truncated(data, pos, el, need)
    return _read_binary_records(data, pos, el, bo)


def _truncated(data: bytes, pos: int, el: PlyElement, need: int) -> PlyError:
    """The error for element ``el`` needing ``need`` bytes from byte ``pos``."""
    return PlyError(
        f"PLY element {el.name!r} ({el.count} records) needs {need} bytes from byte {pos}, "
        f"the file has {len(data) - pos}; the file is truncated"
    )


def _first_record_dtype(data: bytes, pos: int, el: PlyElement, bo: str) -> np.dtype:
    """Record dtype of ``el`` with its lists as long as in the record at ``pos`` (length fields ``__n_<name>``)."""
    fields: list[tuple] = []
    off = pos
    for p in el.properties:
        if p.count_dtype is None:
            fields.append((p.name, bo + p.dtype))
            off += np.dtype(p.dtype).itemsize
        else:
            csize = np.dtype(p.count_dtype).itemsize
            if off + csize > len(data):
                raise _truncated(data, pos, el, off + csize - pos)
            n = int(np.frombuffer(data, bo + p.count_dtype, 1, off)[0])
            if n < 0:
                raise PlyError(f"PLY element {el.name!r} record 0 has list length {n}")
            fields.append((f"__n_{p.name}", bo + p.count_dtype))
            fields.append((p.name, bo + p.dtype, (n,)))
            off += csize + n * np.dtype(p.dtype).itemsize
    return np.dtype(fields)


def _read_binary_records(data: bytes, pos: int, el: PlyElement, bo: str) -> tuple[dict[str, PlyValues], int]:
    """Slow path: records with lists of varying length, one record at a time."""
    lists = [p for p in el.properties if p.count_dtype is not None]
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
                        raise ValueError(n)  # reported below as a record cut short, like a short buffer
                    off += np.dtype(p.count_dtype).itemsize
                    counts[p.name][i] = n
                    flat[p.name].append(np.frombuffer(data, bo + p.dtype, n, off))
                    off += n * np.dtype(p.dtype).itemsize
    except ValueError:
        raise PlyError(
            f"PLY element {el.name!r} ends inside record {i} of {el.count}; the file is truncated"
        ) from None
    out: dict[str, PlyValues] = dict(scal)
    for p in lists:
        values = np.concatenate(flat[p.name]) if flat[p.name] else np.zeros(0, bo + p.dtype)
        out[p.name] = (counts[p.name], values)
    return out, off


def _read_ascii(body: bytes, elements: tuple[PlyElement, ...]) -> dict[str, dict[str, PlyValues]]:
    """Every element of an ASCII body (the bytes after the header)."""
    try:
        tokens = body.decode("ascii").split()
    except UnicodeDecodeError as exc:
        raise PlyError(f"ASCII PLY body has a non-ASCII byte at offset {exc.start}") from exc
    pos = 0
    out: dict[str, dict[str, PlyValues]] = {}
    for el in elements:
        try:
            out[el.name], pos = _read_ascii_element(tokens, pos, el)
        except IndexError:
            raise PlyError(f"ASCII PLY ends inside element {el.name!r}; the file is truncated") from None
        except ValueError as exc:
            raise PlyError(f"non-numeric value in ASCII PLY element {el.name!r}: {exc}") from None
    return out


def _read_ascii_element(tokens: list[str], pos: int, el: PlyElement) -> tuple[dict[str, PlyValues], int]:
    """One element's records from token ``pos``; returns them and the next token. IndexError when the tokens
    run out, ValueError for a non-numeric token."""
    names = [p.name for p in el.properties]
    if all(p.count_dtype is None for p in el.properties):
        n = el.count * len(names)
        if pos + n > len(tokens):
            raise IndexError
        block = np.asarray(tokens[pos : pos + n], dtype=np.float64).reshape(el.count, len(names))
        return {p.name: block[:, j].astype(p.dtype) for j, p in enumerate(el.properties)}, pos + n
    scal = {p.name: np.empty(el.count, p.dtype) for p in el.properties if p.count_dtype is None}
    counts = {p.name: np.empty(el.count, np.int64) for p in el.properties if p.count_dtype}
    flat: dict[str, list[str]] = {p.name: [] for p in el.properties if p.count_dtype}
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
    res: dict[str, PlyValues] = dict(scal)
    for p in el.properties:
        if p.count_dtype:
            res[p.name] = (counts[p.name], np.asarray(flat[p.name], dtype=np.float64).astype(p.dtype))
    return res, pos
