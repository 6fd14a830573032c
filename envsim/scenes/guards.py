"""Checks run on a scene file before and after trimesh reads it: declared sizes against the bytes and the
memory available (GLB/glTF, PLY, OBJ headers), and textures the asset names but that are missing or unreadable."""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import struct
import zlib
from pathlib import Path

from envsim.scenes.ply import PlyError, scan_ply_header
from envsim.scenes.scene import BYTES_PER_TRIANGLE, MAX_INDEX, Material, SceneError

log = logging.getLogger(__name__)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (trimesh and Pillow errors can span lines or be empty)."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'corrupt or truncated data'}"


def geometry_summary(loaded) -> str:
    """What a trimesh scene without triangles holds instead (points per geometry), for an error message."""
    counts = [f"{len(getattr(g, 'vertices', ()))} points" for g in loaded.geometry.values()]
    return ", ".join(counts) if counts else "no geometry"


def _available_memory() -> int | None:
    """Bytes of memory this process can still allocate (Linux MemAvailable, capped by a cgroup v2 limit);
    None where unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and avail is not None:
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return avail


def check_size(path: Path, declared: tuple[int, int] | None) -> None:
    """Refuse a file whose declared (vertices, triangles) cannot fit in the memory available."""
    if declared is None:
        return
    vertices, triangles = declared
    if vertices > MAX_INDEX:
        raise SceneError(f"{path.name} declares {vertices:,} vertices, more than {MAX_INDEX:,}; split or simplify it")
    need = max(triangles, vertices // 2) * BYTES_PER_TRIANGLE
    avail = _available_memory()
    if avail is not None and need > avail:
        raise SceneError(
            f"{path.name} declares {triangles:,} triangles: loading and rendering it needs about "
            f"{_bytes_text(need)} of memory but {_bytes_text(max(avail, 0))} is available; "
            "simplify (decimate) the mesh or use a machine with more memory"
        )


def _bytes_text(n: int) -> str:
    """``n`` bytes as '512 KiB', '3.2 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def declared_size(path: Path) -> tuple[int, int] | None:
    """(vertices, triangles) a file declares, read without parsing its geometry; None when it cannot tell
    (trimesh then reports what is wrong).

    Raises:
        SceneError: a PLY header that promises more data than the file holds (truncated).
    """
    suffix = path.suffix.lower()
    if suffix == ".ply":
        return _ply_declared(path)
    if suffix == ".obj":
        n_v, n_f, _ = _scan_obj(path)
        return n_v, n_f
    header = _gltf_header(path)
    if header is None:
        return None
    try:
        accessors = header.get("accessors", [])
        per_mesh, vert_mesh = [], []
        for mesh in header.get("meshes", []):
            tri = vert = 0
            for prim in mesh.get("primitives", []):
                position = int(accessors[prim["attributes"]["POSITION"]]["count"])
                index = prim.get("indices")
                tri += (int(accessors[index]["count"]) if index is not None else position) // 3
                vert += position
            per_mesh.append(tri)
            vert_mesh.append(vert)
        uses = [node["mesh"] for node in header.get("nodes", []) if isinstance(node, dict) and "mesh" in node]
        uses = uses or range(len(per_mesh))
        return sum(vert_mesh[m] for m in uses), sum(per_mesh[m] for m in uses)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):  # malformed: trimesh will say how
        return None


def _ply_declared(path: Path) -> tuple[int, int] | None:
    """A PLY header's vertex and face counts, checked against the bytes (binary) or lines (ASCII) after it."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    try:
        header = scan_ply_header(head)
    except PlyError as exc:
        raise SceneError(f"{path.name}: bad PLY header line {exc.text!r} (corrupt file?)") from None
    if header is None:
        return None
    counts = {el.name: el.count for el in header.elements}
    vertices, faces = counts.get("vertex", 0), counts.get("face", 0)
    body = path.stat().st_size - header.length
    if header.format.startswith("binary"):
        # lists of >= 0 entries: each record holds at least its scalars and list lengths
        need = sum(el.count * sum(p.fixed_size for p in el.properties) for el in header.elements)
        if need > body:
            raise SceneError(
                f"{path.name} is truncated: its header declares {vertices:,} vertices and {faces:,} faces "
                f"(at least {need:,} bytes) but only {body:,} bytes follow it"
            )
    elif header.format == "ascii":
        records = sum(el.count for el in header.elements)
        found = _count_lines(path, header.length)
        if found < records:
            raise SceneError(
                f"{path.name} is truncated: its header declares {vertices:,} vertices and {faces:,} faces "
                f"({records:,} lines) but only {found:,} lines follow it"
            )
    return vertices, faces


def _count_lines(path: Path, start: int) -> int:
    """Lines from byte ``start`` to the end of a file (a last line without a line break counts)."""
    n_lf = n_cr = 0
    last = b"\n"
    with open(path, "rb") as f:
        f.seek(start)
        for chunk in iter(lambda: f.read(1 << 22), b""):
            n_lf += chunk.count(b"\n")
            n_cr += chunk.count(b"\r")
            last = chunk[-1:]
    return max(n_lf, n_cr) + (last not in (b"\n", b"\r"))


def _scan_obj(path: Path) -> tuple[int, int, list[str]]:
    """(vertex lines, face lines, ``mtllib`` names) of an OBJ file, in one streaming pass."""
    n_v = n_f = 0
    libs: list[str] = []
    carry = b"\n"
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut <= 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut:]  # carry keeps the line break: line starts stay visible
            n_v += block.count(b"\nv ") + block.count(b"\nv\t")
            n_f += block.count(b"\nf ") + block.count(b"\nf\t")
            libs += [m.decode("utf-8", "replace").strip() for m in re.findall(rb"\nmtllib[ \t]+([^\r\n]+)", block)]
    block = carry + b"\n"
    n_v += block.count(b"\nv ") + block.count(b"\nv\t")
    n_f += block.count(b"\nf ") + block.count(b"\nf\t")
    libs += [m.decode("utf-8", "replace").strip() for m in re.findall(rb"\nmtllib[ \t]+([^\r\n]+)", block)]
    return n_v, n_f, libs


def _gltf_header(path: Path) -> dict | None:
    """The JSON of a .gltf file or of a GLB's first chunk; None when it is not readable as such."""
    try:
        if path.suffix.lower() == ".gltf":
            header = json.loads(path.read_bytes())
        else:
            with open(path, "rb") as f:
                magic, _, _, length, kind = struct.unpack("<4sIIII", f.read(20))
                if magic != b"glTF" or kind != 0x4E4F534A:  # 'JSON'
                    return None
                header = json.loads(f.read(length))
    except (OSError, ValueError, UnicodeDecodeError, struct.error, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _gltf_blob(path: Path, header: dict, view: int) -> bytes:
    """Bytes of a bufferView: in a GLB's binary chunk or in an external .bin file."""
    bv = header["bufferViews"][view]
    buffer = header["buffers"][bv["buffer"]]
    start, length = int(bv.get("byteOffset", 0)), int(bv["byteLength"])
    if "uri" in buffer:
        uri = buffer["uri"]
        if uri.startswith("data:"):
            return _uri_bytes(path, uri)[start : start + length]
        source, offset = path.parent / uri, 0
    else:
        with open(path, "rb") as f:
            f.seek(12)
            offset = 20 + struct.unpack("<I", f.read(4))[0] + 8  # past the JSON chunk and the BIN chunk header
        source = path
    with open(source, "rb") as f:
        f.seek(offset + start)
        return f.read(length)


def _uri_bytes(path: Path, uri: str) -> bytes:
    if uri.startswith("data:"):
        return base64.b64decode(uri.partition(",")[2])
    return (path.parent / uri).read_bytes()


def _is_image(source: bytes | Path) -> bool:
    """Whether Pillow recognises ``source`` (bytes or a file) as an image, as trimesh needs it to."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source):
            return True
    except image_errors():
        return False


def image_errors() -> tuple[type[Exception], ...]:
    """What Pillow raises for data that is not an image or is corrupt (opening or decoding it)."""
    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, struct.error, zlib.error,
            MemoryError, Image.DecompressionBombError)


def texture_problems(path: Path, materials: tuple[Material, ...]) -> list[str]:
    """Textures the asset names that are missing or not images (trimesh drops those silently)."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        return _obj_texture_problems(path, materials)
    if suffix not in (".glb", ".gltf"):
        return []
    header = _gltf_header(path)
    problems: list[str] = []
    if header is None:
        return problems
    try:
        images, textures = header.get("images", []), header.get("textures", [])
        used = set()
        for mat in header.get("materials", []):
            ref = mat.get("pbrMetallicRoughness", {}).get("baseColorTexture")
            if ref is not None:
                used.add(int(textures[ref["index"]]["source"]))
        for i in sorted(used):
            image = images[i]
            uri = image.get("uri")
            if uri is not None and not uri.startswith("data:"):  # a file name, as trimesh resolves it
                if not (path.parent / uri).is_file():
                    problems.append(f"texture {uri} not found; its surfaces use their material colour")
                elif not _is_image(path.parent / uri):
                    problems.append(f"texture {uri} is not a readable image; its surfaces use their material colour")
            else:
                blob = _uri_bytes(path, uri) if uri is not None else _gltf_blob(path, header, image["bufferView"])
                if not _is_image(blob):
                    problems.append(f"embedded texture {i} is not a readable image; its surfaces use their colour")
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, OSError, struct.error, binascii.Error):
        pass  # a reference trimesh could not follow either: nothing more to say about it
    return problems


def _obj_texture_problems(path: Path, materials: tuple[Material, ...]) -> list[str]:
    textured = {m.name: m.texture is not None for m in materials}
    problems: list[str] = []
    for lib in _scan_obj(path)[2]:
        mtl = path.parent / lib
        try:
            text = mtl.read_text(errors="replace")
        except (OSError, ValueError):  # missing, a folder, unreadable, or a name with a NUL byte
            problems.append(f"material library {lib!r} not found or unreadable; surfaces use a default grey")
            continue
        material = None
        for line in text.splitlines():
            words = line.split()
            if len(words) > 1 and words[0] == "newmtl":
                material = " ".join(words[1:])
            elif len(words) > 1 and words[0].lower() == "map_kd" and textured.get(material) is False:
                name = line[line.lower().index("map_kd") + 6 :].strip()
                try:
                    state = "is not a readable image" if (mtl.parent / name).is_file() else "not found"
                except ValueError:
                    state = "not found"
                problems.append(f"texture {name} of material {material} {state}; using the material colour (Kd)")
    return problems
