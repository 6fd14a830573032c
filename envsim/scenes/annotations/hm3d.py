"""HM3D-Semantics v0.2: ``<hash>.semantic.txt``, the texture-coded ``<hash>.semantic.glb`` and the room votes.

Formats as habitat-sim reads them (``HM3DSemanticScene.cpp``) and as the HM3D annotation processing script
writes the per-region room votes (``Per_Scene_Region_Votes.csv``).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from envsim.scenes.annotations.files import file_location, read_text
from envsim.scenes.annotations.labels import AnnotationError, PathLike, load_room_labels, map_room_label
from envsim.scenes.scene import UpAxis, z_up_to_y_up

log = logging.getLogger(__package__)  # the package's logger, shared by all its readers

__all__ = [
    "HM3D_TXT_HEADER",
    "Hm3dFaceInstances",
    "Hm3dInstance",
    "hm3d_face_instances",
    "read_hm3d_semantic_txt",
    "read_region_votes",
]

HM3D_TXT_HEADER = "HM3D Semantic Annotations"
"""First line of an HM3D ``semantic.txt``; habitat-sim looks for it to recognise the format."""


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
    lines = read_text(path, "HM3D semantic.txt").splitlines()
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
                f'{file_location(path, lineno)}: expected <id>,<RRGGBB>,"<category>",<region id>{hint}, '
                f"got {line.strip()[:80]!r}"
            )
        inst = Hm3dInstance(int(m.group(1)), m.group(2).upper(), m.group(3).strip(), int(m.group(4)))
        if inst.instance_id in ids:
            raise AnnotationError(
                f"{file_location(path, lineno)}: instance id {inst.instance_id} repeats line {ids[inst.instance_id]}; "
                "ids must be unique"
            )
        if inst.hex_color in colors:
            log.warning(
                "%s: colour %s repeats line %d; faces of that colour map to the first instance (as habitat)",
                file_location(path, lineno), inst.hex_color, colors[inst.hex_color],
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
    text = read_text(path, "HM3D region votes CSV")
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
            raise AnnotationError(f"{file_location(path, 1)}: no 'Room Proposal' column in the header {rows[0]}")
    want = _scene_key(scene_id)
    out: dict[int, str] = {}
    scenes: set[str] = set()
    for lineno, row in enumerate(rows[start:], start + 1):
        if not any(c.strip() for c in row):
            continue
        need = max(scene_col, region_col, prop_col if prop_col >= 0 else 2) + 1
        if len(row) < need or (header and start and len(row) != len(header)):
            expected = len(header) if start else f"at least {need}"
            raise AnnotationError(f"{file_location(path, lineno)}: {len(row)} columns, expected {expected}")
        scene = row[scene_col].strip()
        scenes.add(scene)
        if _scene_key(scene) != want:
            continue
        try:
            region = int(row[region_col])
        except ValueError:
            raise AnnotationError(
                f"{file_location(path, lineno)}: region id {row[region_col]!r} is not an integer"
            ) from None
        proposal = row[prop_col].strip()
        if not proposal:
            raise AnnotationError(f"{file_location(path, lineno)}: empty room proposal for region {region}")
        if region in out:
            raise AnnotationError(f"{file_location(path, lineno)}: region {region} of scene {scene} is listed twice")
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
