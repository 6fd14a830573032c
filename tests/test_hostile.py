"""Hostile and broken input: never a traceback, never damage to output that already exists.

Each case goes through the real command line in-process (``main([...])``) or :func:`load_scene`, and
checks the exit status, a single stderr line naming the file and the problem, and what is left on disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

import envsim.scenes.guards as guards
import envsim.scenes.scene as scene_mod
from envsim.provenance import write_json_atomic
from envsim.scenes.load import load_scene
from envsim.scenes.scene import BYTES_PER_TRIANGLE, SceneError
from envsim.store.shards import ShardLayout, ShardWriter, read_manifest, read_shard
from envsim.store.verify import verify_dataset
from ess.main import main
from tests.conftest import room_with_furniture

FAST = ["--views", "6", "--size", "16x12", "--no-progress", "--views-per-trajectory", "3"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """Run ``ess`` in-process: (exit status, stderr), checking stderr holds no traceback."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def _fails_in_one_line(capsys, *argv: str) -> str:
    rc, err = _cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, (rc, err)
    assert lines[0].startswith(f"ess {argv[0]}: error: ")
    return lines[0]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.partial")) if folder.exists() else []


# ------------------------------------------------------------------------------------------- inputs


def _room(seed: int = 0) -> trimesh.Trimesh:
    m = room_with_furniture(seed)
    m.visual.face_colors = np.random.default_rng(seed).integers(0, 256, (len(m.faces), 4))
    return m


def _mesh_bytes() -> dict[str, tuple[str, bytes]]:
    """A furnished room in every format: name -> (suffix, bytes)."""
    m = _room()
    return {
        "glb": (".glb", trimesh.Scene({"room": m}).export(file_type="glb")),
        "ply-binary": (".ply", m.export(file_type="ply")),
        "ply-ascii": (".ply", m.export(file_type="ply", encoding="ascii")),
        "obj": (".obj", m.export(file_type="obj").encode()),
    }


MESHES = _mesh_bytes()


def _check_loaded(scene) -> None:
    """What a Scene that load_scene returned must satisfy, however odd its file was."""
    assert scene.n_triangles > 0
    assert np.all(np.isfinite(scene.vertices)) and np.abs(scene.vertices).max() <= scene_mod.MAX_COORDINATE
    assert scene.faces.min() >= 0 and scene.faces.max() < len(scene.vertices)
    assert np.all(np.isfinite(scene.uv))
    assert len(scene.face_material) == len(scene.face_object) == scene.n_triangles


@pytest.mark.parametrize("fmt", sorted(MESHES))
@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.1, 0.33, 0.5, 0.9, 0.999])
def test_truncated_mesh_is_a_scene_error_or_a_smaller_valid_mesh(tmp_path, fmt, fraction):
    suffix, data = MESHES[fmt]
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    try:
        scene = load_scene(path)
    except SceneError as exc:
        assert path.name in str(exc)
        return
    # Only text can end cleanly at a cut: an OBJ cut at a line break is a smaller mesh, and so is an ASCII
    # PLY cut inside its last record (its line count still matches the header). Binary files always fail.
    assert fmt == "obj" or (fmt == "ply-ascii" and fraction > 0.99), f"a truncated {fmt} loaded"
    _check_loaded(scene)


@pytest.mark.parametrize("fmt", sorted(MESHES))
def test_truncated_mesh_through_the_cli(tmp_path, capsys, fmt):
    suffix, data = MESHES[fmt]
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2 + 7])  # mid-record for every format
    line = _fails_in_one_line(capsys, "render", cut, "--out", tmp_path / "out", *FAST)
    assert "cut" + suffix in line or "scene cut" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", sorted(MESHES))
def test_bit_flipped_meshes_load_or_fail_cleanly(tmp_path, fmt):
    suffix, data = MESHES[fmt]
    rng = np.random.default_rng(1234)
    outcomes = []
    for i in range(25):
        b = bytearray(data)
        for j in rng.integers(0, len(b), int(rng.integers(1, 24))):
            b[j] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"flip{i}{suffix}"
        path.write_bytes(bytes(b))
        try:
            _check_loaded(load_scene(path))
            outcomes.append("loaded")
        except SceneError as exc:
            assert path.name in str(exc) or f"scene flip{i}" in str(exc), exc
            assert "\n" not in str(exc)
            outcomes.append("error")
    assert "error" in outcomes or fmt == "obj"  # flips in binary headers and indices are caught


@pytest.mark.parametrize("fmt", ["glb", "ply-binary"])
def test_bit_flipped_meshes_through_the_cli(tmp_path, capsys, fmt):
    suffix, data = MESHES[fmt]
    rng = np.random.default_rng(99)
    for i in range(3):
        b = bytearray(data)
        for j in rng.integers(0, min(len(b), 400), 6):  # headers and the first records
            b[j] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"flip{i}{suffix}"
        path.write_bytes(bytes(b))
        rc, err = _cli(capsys, "render", path, "--out", tmp_path / f"out{i}", *FAST)
        assert rc in (0, 2), err
        if rc == 2:
            assert len(err.strip().splitlines()) == 1, err


def test_nan_and_absurd_coordinates(tmp_path, capsys):
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    assert "non-finite" in _fails_in_one_line(capsys, "render", tmp_path / "nan.obj", "--out", tmp_path / "o", *FAST)
    (tmp_path / "far.obj").write_text("v 0 0 0\nv 1 0 0\nv 1e300 1 0\nf 1 2 3\n")  # inf once float32
    line = _fails_in_one_line(capsys, "render", tmp_path / "far.obj", "--out", tmp_path / "o", *FAST)
    assert "from the origin" in line and "far" in line
    assert not (tmp_path / "o").exists()


def test_points_only_ply_has_no_triangles(tmp_path, capsys):
    (tmp_path / "points.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "end_header\n0 0 0\n1 0 0\n0 1 0\n"
    )
    line = _fails_in_one_line(capsys, "render", tmp_path / "points.ply", "--out", tmp_path / "o", *FAST)
    assert "points.ply holds no triangles (3 points)" in line
    m = trimesh.creation.box()
    trimesh.Trimesh(m.vertices, np.zeros((0, 3), int)).export(tmp_path / "nofaces.glb")
    with pytest.raises(SceneError, match="no triangles"):
        load_scene(tmp_path / "nofaces.glb")


# ------------------------------------------------------------------------------------ huge meshes

HUGE_BINARY = (
    b"ply\nformat binary_little_endian 1.0\nelement vertex 25000000\nproperty float x\nproperty float y\n"
    b"property float z\nelement face 50000000\nproperty list uchar int vertex_indices\nend_header\n"
)


def test_huge_ply_header_with_truncated_body_fails_fast(tmp_path, capsys):
    (tmp_path / "huge.ply").write_bytes(HUGE_BINARY + bytes(4096))
    t0 = time.perf_counter()
    line = _fails_in_one_line(capsys, "render", tmp_path / "huge.ply", "--out", tmp_path / "o", *FAST)
    assert "huge.ply is truncated" in line and "50,000,000 faces" in line
    (tmp_path / "huge_ascii.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 50000000\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 0 1\n3 0 1 2\n"
    )
    line = _fails_in_one_line(capsys, "inspect", tmp_path / "huge_ascii.ply")
    assert "huge_ascii.ply is truncated" in line and "only 4 lines" in line
    assert time.perf_counter() - t0 < 10  # nothing was allocated for 50M faces


def test_huge_glb_declaration_fails_cleanly(tmp_path, capsys):
    data = bytearray(MESHES["glb"][1])
    length = int.from_bytes(data[12:16], "little")
    header = json.loads(data[20 : 20 + length])
    for acc in header["accessors"]:
        acc["count"] = 150_000_000
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 4)
    body = data[20 + length :]
    glb = b"glTF" + (2).to_bytes(4, "little") + (12 + 8 + len(text) + len(body)).to_bytes(4, "little")
    glb += len(text).to_bytes(4, "little") + b"JSON" + text + body
    (tmp_path / "huge.glb").write_bytes(glb)
    line = _fails_in_one_line(capsys, "render", tmp_path / "huge.glb", "--out", tmp_path / "o", *FAST)
    assert "huge.glb" in line


def test_mesh_larger_than_available_memory_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20,480 triangles
    sphere.export(tmp_path / "big.ply")
    monkeypatch.setattr(guards, "_available_memory", lambda: 2 * 2**20)
    assert len(sphere.faces) * BYTES_PER_TRIANGLE > 2 * 2**20
    line = _fails_in_one_line(capsys, "inspect", tmp_path / "big.ply")
    assert "big.ply declares 20,480 triangles" in line and "2.0 MiB is available" in line
    monkeypatch.setattr(guards, "_available_memory", lambda: None)  # unknown: no guard
    assert load_scene(tmp_path / "big.ply").n_triangles == 20480


# ------------------------------------------------------------------------------------ textures


def _textured_box(folder: Path) -> Path:
    box = trimesh.creation.box((2, 1, 2))
    img = Image.fromarray(np.full((8, 8, 3), 255, np.uint8))
    uv = np.random.default_rng(1).uniform(0, 1, (len(box.vertices), 2))
    mat = trimesh.visual.material.SimpleMaterial(image=img, diffuse=[200, 100, 50, 255])
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=img, material=mat)
    folder.mkdir(parents=True, exist_ok=True)
    box.export(folder / "box.obj")
    trimesh.Scene({"box": box}).export(folder / "box.gltf")
    return folder


def _room_obj_with_texture(folder: Path) -> Path:
    """A furnished room OBJ + MTL whose one material names a texture and Kd orange."""
    folder.mkdir(parents=True, exist_ok=True)
    m = room_with_furniture(0)
    lines = ["mtllib room.mtl", "usemtl wood"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in m.vertices]
    lines += [f"vt {u:.3f} {v:.3f}" for u, v in np.random.default_rng(0).uniform(0, 1, (len(m.vertices), 2))]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in m.faces + 1]
    (folder / "room.obj").write_text("\n".join(lines) + "\n")
    (folder / "room.mtl").write_text("newmtl wood\nKd 0.9 0.5 0.1\nmap_Kd wood.png\n")
    return folder / "room.obj"


def test_obj_texture_missing_renders_with_the_material_colour_and_a_warning(tmp_path, capsys, caplog):
    obj = _room_obj_with_texture(tmp_path / "scene")
    caplog.set_level("WARNING")
    scene = load_scene(obj)
    assert scene.materials[0].texture is None
    np.testing.assert_allclose(scene.materials[0].factor, [0.9, 0.5, 0.1], atol=1e-2)  # via uint8
    assert "texture wood.png of material wood not found; using the material colour (Kd)" in caplog.text
    caplog.clear()
    rc, err = _cli(capsys, "render", obj, "--out", tmp_path / "out", *FAST)
    assert rc == 0, err
    assert "wood.png" in caplog.text
    shard = read_shard(tmp_path / "out" / "shard-00000.h5")
    lit = shard["rgb"][shard["depth"] > 0].astype(float)  # (M, 3) surface pixels: orange, not white
    r, g, b = lit.mean(axis=0)
    assert r > g > b


def test_obj_texture_unreadable_or_library_missing(tmp_path, caplog):
    obj = _room_obj_with_texture(tmp_path)
    (tmp_path / "wood.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    caplog.set_level("WARNING")
    assert load_scene(obj).materials[0].texture is None
    assert "wood.png of material wood is not a readable image" in caplog.text
    caplog.clear()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "wood.png")
    assert load_scene(obj).materials[0].texture.shape == (4, 4, 3)
    assert caplog.text == ""
    (tmp_path / "room.mtl").unlink()
    load_scene(obj)
    assert "material library 'room.mtl' not found or unreadable" in caplog.text
    (tmp_path / "room.mtl").mkdir()  # there, but a folder
    load_scene(obj)
    obj.write_text(obj.read_text().replace("mtllib room.mtl", "mtllib ro\x00om.mtl"))  # a NUL in the name
    _check_loaded(load_scene(obj))


def test_gltf_missing_texture_warns_and_missing_buffer_fails(tmp_path, capsys, caplog):
    folder = _textured_box(tmp_path / "box")
    header = json.loads((folder / "box.gltf").read_text())
    header["images"] = [{"uri": "albedo.png"}]  # an external texture that is not there
    (folder / "box.gltf").write_text(json.dumps(header))
    caplog.set_level("WARNING")
    scene = load_scene(folder / "box.gltf")
    assert scene.materials[0].texture is None
    np.testing.assert_allclose(scene.materials[0].factor, [200 / 255, 100 / 255, 50 / 255], atol=1e-2)
    assert "box.gltf: texture albedo.png not found" in caplog.text
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "albedo.png")
    caplog.clear()
    assert load_scene(folder / "box.gltf").materials[0].texture is not None and caplog.text == ""
    buffers = [b["uri"] for b in header["buffers"]]
    (folder / buffers[1]).unlink()
    line = _fails_in_one_line(capsys, "inspect", folder / "box.gltf")
    assert f"box.gltf refers to a file that is missing: {buffers[1]}" in line
    (folder / buffers[1]).write_bytes(b"\0" * 3)  # there, but too short
    assert "box.gltf" in _fails_in_one_line(capsys, "inspect", folder / "box.gltf")


def test_corrupt_embedded_texture_warns(tmp_path, caplog):
    folder = _textured_box(tmp_path)
    glb = trimesh.load(folder / "box.obj", force="scene", process=False).export(file_type="glb")
    png = glb.find(b"\x89PNG")
    assert png > 0
    broken = glb[: png + 8] + b"\xff" * 40 + glb[png + 48 :]
    (tmp_path / "tex.glb").write_bytes(broken)
    caplog.set_level("WARNING")
    scene = load_scene(tmp_path / "tex.glb")
    assert scene.materials[0].texture is None
    assert "tex.glb: " in caplog.text and "texture" in caplog.text


# ------------------------------------------------------------------------------- degenerate geometry


def _with_degenerate_faces(mesh: trimesh.Trimesh, rng: np.random.Generator) -> trimesh.Trimesh:
    """``mesh`` plus zero-area triangles: collinear, repeated indices, one point, and repeated floor
    vertices."""
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    extra_v, extra_f = [], []
    for _ in range(40):
        a, b = rng.uniform([-3, 0, -2.5], [3, 3, 2.5], (2, 3))
        base = len(v) + len(extra_v)
        extra_v += [a, b, a + rng.uniform() * (b - a)]
        extra_f += [[base, base + 1, base + 2], [base, base, base + 1], [base + 2, base + 2, base + 2]]
    extra_f += [[i, i, j] for i, j in f[:, :2]]  # reuse every face's vertices: zero area along all edges
    return trimesh.Trimesh(np.concatenate([v, extra_v]), np.concatenate([f, extra_f]), process=False)


def test_degenerate_triangles_are_kept_and_change_nothing(tmp_path, capsys):
    room = room_with_furniture(0)
    (tmp_path / "clean").mkdir()
    (tmp_path / "degenerate").mkdir()
    room.export(tmp_path / "clean" / "room.ply")
    bad = _with_degenerate_faces(room, np.random.default_rng(0))
    bad.export(tmp_path / "degenerate" / "room.ply")
    scene = load_scene(tmp_path / "degenerate" / "room.ply")
    assert scene.n_triangles == len(bad.faces)  # kept, not dropped
    for name in ("clean", "degenerate"):
        rc, err = _cli(capsys, "render", tmp_path / name / "room.ply", "--out", tmp_path / f"out-{name}", *FAST)
        assert rc == 0, err
    a, b = (read_shard(tmp_path / f"out-{n}" / "shard-00000.h5") for n in ("clean", "degenerate"))
    np.testing.assert_array_equal(a["position"], b["position"])  # same navigable space, same walk
    np.testing.assert_array_equal(a["rgb"], b["rgb"])  # zero-area triangles are never hit
    np.testing.assert_array_equal(a["depth"], b["depth"])
    na, nb = (np.load(tmp_path / f"out-{n}" / "nav" / "room.npz") for n in ("clean", "degenerate"))
    np.testing.assert_array_equal(na["walkable"], nb["walkable"])


def test_obj_with_degenerate_face_lines(tmp_path):
    (tmp_path / "d.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 0 0 1\nf 1 2 3\nf 1 1 2\nf 1 2 4\n")
    scene = load_scene(tmp_path / "d.obj")
    _check_loaded(scene)
    assert scene.n_triangles >= 1


# ----------------------------------------------------------------------------------- no floor


def test_scene_without_a_floor(tmp_path, capsys):
    trimesh.creation.box((0.05, 2.0, 3.0)).export(tmp_path / "wall.ply")  # a lone wall: a 5 cm ledge on top
    line = _fails_in_one_line(capsys, "render", tmp_path / "wall.ply", "--out", tmp_path / "o", *FAST)
    assert "scene wall" in line and "navigable" in line
    quad = trimesh.Trimesh([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0]], [[0, 1, 2], [0, 2, 3]])  # vertical
    quad.export(tmp_path / "sheet.ply")
    line = _fails_in_one_line(capsys, "render", tmp_path / "sheet.ply", "--out", tmp_path / "o", *FAST)
    assert "scene sheet" in line and "no navigable area" in line
    assert not (tmp_path / "o").exists()


def test_ceiling_only_room_has_no_floor(tmp_path, capsys):
    """The top of a down-facing ceiling is not a floor (as in Recast/Habitat): no agent walks on it."""
    room = trimesh.creation.box((4.0, 3.0, 4.0))
    room.apply_translation([0, 1.5, 0])
    room.invert()  # an interior: normals face into the room, the ceiling's face down
    keep = room.triangles_center[:, 1] > 1e-6  # drop the floor
    trimesh.Trimesh(room.vertices, room.faces[keep]).export(tmp_path / "nofloor.ply")
    line = _fails_in_one_line(capsys, "render", tmp_path / "nofloor.ply", "--out", tmp_path / "o", *FAST)
    assert "navigable" in line


# ------------------------------------------------------------------------------- output folders


def test_out_is_a_file_or_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    line = _fails_in_one_line(capsys, "render", "procedural:1", "--out", tmp_path / "file", *FAST)
    assert "exists and is not a folder" in line
    line = _fails_in_one_line(capsys, "render", "procedural:1", "--out", tmp_path / "file" / "sub", *FAST)
    assert "Not a directory" in line and str(tmp_path / "file") in line
    assert (tmp_path / "file").read_text() == "x"


def test_out_where_the_system_refuses_to_create_folders(capsys):
    parent = Path("/sys/ess-hostile-test")  # sysfs: mkdir fails with EPERM, also for root
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here")
    line = _fails_in_one_line(capsys, "render", "procedural:1", "--out", parent / "out", *FAST)
    assert str(parent) in line and "not permitted" in line.lower() or "permission denied" in line.lower()
    assert not parent.exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder the process cannot write into: chmod 555, or a read-only tmpfs for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if not IS_ROOT:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True, check=False).returncode:
        pytest.skip("running as root (chmod does not stop root) and cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_output_folder(read_only_folder, tmp_path, capsys):
    room = tmp_path / "room.ply"
    room_with_furniture(0).export(room)
    line = _fails_in_one_line(capsys, "render", room, "--out", read_only_folder, *FAST)
    assert "read-only" in line.lower() or "permission denied" in line.lower()
    line = _fails_in_one_line(capsys, "render", room, "--out", read_only_folder / "sub", *FAST)
    assert "read-only" in line.lower() or "permission denied" in line.lower()
    assert read_only_folder.is_dir() and not any(read_only_folder.iterdir())


def test_permission_denied_for_root_without_its_override(tmp_path):
    """chmod 555 stops every user but root; run ``ess`` as root without the capabilities that let root
    ignore file modes (``setpriv``), so the folder refuses it with EACCES as it would anyone else."""
    if not IS_ROOT or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (non-root runs get EACCES from the read_only_folder fixture)")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    room_with_furniture(0).export(tmp_path / "room.ply")
    caps = "-dac_override,-dac_read_search"
    for out in (folder, folder / "sub"):
        cmd = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable, "-m", "ess",
               "render", str(tmp_path / "room.ply"), "--out", str(out), *FAST]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False)
        if run.stderr.startswith("setpriv:"):
            pytest.skip(f"setpriv cannot drop capabilities here: {run.stderr.strip()}")
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert "permission denied" in lines[0].lower() and str(folder) in lines[0]
    assert not any(folder.iterdir())


def test_rerun_into_a_dataset_made_read_only_leaves_it_intact(tmp_path, capsys):
    if not IS_ROOT:
        pytest.skip("needs root to mount and remount a tmpfs")
    folder = tmp_path / "mnt"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        room = tmp_path / "room.ply"
        room_with_furniture(0).export(room)
        out = folder / "data"
        assert _cli(capsys, "render", room, "--out", out, *FAST, "--views", "8", "--shard-size", "3")[0] == 0
        (out / "shard-00002.h5").unlink()  # an interrupted job, to be resumed
        before = _digests(out)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        line = _fails_in_one_line(capsys, "render", room, "--out", out, *FAST, "--views", "8", "--shard-size", "3")
        assert "read-only" in line.lower() and str(out) in line
        assert _digests(out) == before
        assert verify_dataset(out) == {"shard-00002.h5": ["missing"]}
    finally:
        subprocess.run(["umount", str(folder)], check=False)


# ------------------------------------------------------------------------------------- full disk


class _Disk:
    """``left``: bytes the simulated disk still takes (None: no limit)."""

    left: int | None = None


@pytest.fixture
def disk(monkeypatch):
    """A disk that fills up: shard writes (``os.pwrite``, which HDF5 reaches through the shard writer) fail
    with ENOSPC once ``disk.left`` bytes are used, after writing what still fitted."""
    state = _Disk()
    real = os.pwrite

    def pwrite(fd, data, offset):
        if state.left is None:
            return real(fd, data, offset)
        n = min(len(memoryview(data).cast("B")), state.left)
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        state.left -= n
        return real(fd, memoryview(data).cast("B")[:n], offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return state


def _batch(n: int = 2, h: int = 4, w: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "rgb": rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
        "depth": rng.uniform(0, 5, (n, h, w)).astype(np.float32),
        "pose": np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)),
        "position": np.zeros((n, 3), np.float32),
        "rotation": np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
        "light": np.zeros((n, 5), np.float32),
        "scene": np.zeros(n, np.int32),
        "trajectory": np.zeros(n, np.int32),
        "step": np.arange(n, dtype=np.int32),
        "room": np.zeros(n, np.int32),
    }


@pytest.mark.parametrize("left", [0, 1000, 3000, 20_000])
def test_shard_writer_on_a_full_disk_removes_its_partial_file(tmp_path, disk, left):
    layout = ShardLayout(samples=16, height=16, width=16)
    disk.left = left  # at creation, during the writes, at the flush on close
    with pytest.raises(OSError) as exc, ShardWriter(tmp_path / "shard-00000.h5", layout=layout, attrs={}) as w:
        for _ in range(4):
            w.write(**_batch(4, 16, 16))
    assert exc.value.errno == errno.ENOSPC
    text = str(exc.value)
    assert text.startswith(f"[Errno 28] disk full while writing {tmp_path / 'shard-00000.h5'}: ")
    assert text.endswith(" bytes free") and "\n" not in text
    assert list(tmp_path.iterdir()) == []
    disk.left = None  # the same writer code works again once there is space
    with ShardWriter(tmp_path / "shard-00000.h5", layout=layout, attrs={}) as w:
        for _ in range(4):
            w.write(**_batch(4, 16, 16))
    assert read_shard(tmp_path / "shard-00000.h5")["rgb"].shape == (16, 16, 16, 3)


def test_json_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    write_json_atomic(path, {"a": 1})

    real_open = open

    class Full:
        def __init__(self, file, mode):
            self.f = real_open(file, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:6])  # half written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("envsim.provenance.open", Full, raising=False)
    with pytest.raises(OSError, match="disk full while writing .*manifest.json"):
        write_json_atomic(path, {"a": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1} and sorted(tmp_path.iterdir()) == [path]


def test_full_disk_mid_job(tmp_path, capsys, disk):
    room = tmp_path / "room.ply"
    room_with_furniture(0).export(room)
    job = ["render", room, *FAST, "--shard-size", "3"]
    done = tmp_path / "done"  # a finished dataset beside the one that runs out of space
    assert _cli(capsys, *job, "--out", done)[0] == 0
    before = _digests(done)
    out = tmp_path / "out"
    for left in ((done / "shard-00000.h5").stat().st_size + 500, 500):  # shard 0 fits; then a rerun, still full
        disk.left = left
        line = _fails_in_one_line(capsys, *job, "--out", out)
        assert "disk full" in line and str(out) in line
        assert _leftovers(out) == []
        assert verify_dataset(out) == {"": ["the render job has not finished (rerun its `ess render` command)"]}
        assert [e["file"] for e in read_manifest(out)["shards"]] == ["shard-00000.h5"]
        assert _digests(out)["shard-00000.h5"] == before["shard-00000.h5"]
    assert _digests(done) == before and verify_dataset(done) == {}
    disk.left = None  # space freed: the rerun finishes the job
    assert _cli(capsys, *job, "--out", out)[0] == 0
    assert verify_dataset(out) == {}
    assert {k: v for k, v in _digests(out).items() if k.startswith("shard")} == {
        k: v for k, v in before.items() if k.startswith("shard")
    }


def test_full_disk_on_a_fresh_job_leaves_nothing(tmp_path, capsys, disk):
    room = tmp_path / "room.ply"
    room_with_furniture(0).export(room)
    disk.left = 5000
    line = _fails_in_one_line(capsys, "render", room, *FAST, "--out", tmp_path / "out")
    assert "disk full" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only; skipped elsewhere)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not IS_ROOT or subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, check=False
    ).returncode:
        pytest.skip("a real full disk needs root and tmpfs; the simulated ENOSPC tests cover the logic")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_real_full_disk(small_disk, tmp_path, capsys):
    room = tmp_path / "room.ply"
    room_with_furniture(0).export(room)
    job = ["render", room, "--no-progress", "--views", "40", "--views-per-trajectory", "10", "--size", "64x48",
           "--compression", "none", "--shard-size", "10"]  # 4 shards of ~215 KB
    done = small_disk / "done"
    assert _cli(capsys, *job, "--out", done)[0] == 0
    before = _digests(done)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 300_000))  # room for the first shard or so, not for four
    out = small_disk / "out"
    line = _fails_in_one_line(capsys, *job, "--out", out)
    assert "disk full" in line and str(out) in line
    assert _leftovers(small_disk) == []
    assert _digests(done) == before and verify_dataset(done) == {}
    if out.exists():  # shards that fitted stay, listed in the manifest and intact
        bad = verify_dataset(out)
        assert set(bad) == {""}, bad
    filler.unlink()
    assert _cli(capsys, *job, "--out", out)[0] == 0
    assert verify_dataset(out) == {}
    assert {k: v for k, v in _digests(out).items() if k.startswith("shard")} == {
        k: v for k, v in before.items() if k.startswith("shard")
    }


# ------------------------------------------------------------------------------- what the CLI shows


def test_os_errors_of_any_subcommand_are_one_line(tmp_path, capsys):
    room = tmp_path / "room.ply"
    room_with_furniture(0).export(room)
    assert _cli(capsys, "render", room, "--out", tmp_path / "data", *FAST)[0] == 0
    (tmp_path / "file").write_text("x")
    line = _fails_in_one_line(capsys, "preview", tmp_path / "data", "--out", tmp_path / "file" / "png")
    assert "Not a directory" in line and str(tmp_path / "file") in line


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    import ess.inspect

    def broken(args):
        raise TypeError("a genuine bug")

    monkeypatch.setattr(ess.inspect, "run", broken)
    with pytest.raises(TypeError, match="a genuine bug"):
        main(["inspect", str(tmp_path)])


def test_os_error_message_names_the_file_once():
    from ess.main import os_error_message

    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/data/out")) == (
        "Permission denied: /data/out"
    )
    assert os_error_message(OSError(errno.ENOSPC, "No space left on device", "/d/x.npz")) == (
        "disk full (No space left on device: /d/x.npz); free space and rerun"
    )
    assert os_error_message(OSError(errno.ENOSPC, "disk full while writing /d/s.h5: 0 bytes free")) == (
        "disk full while writing /d/s.h5: 0 bytes free"
    )
    assert os_error_message(OSError("line one\nline two")) == "line one"
    assert os_error_message(OSError(errno.EIO, " ")) == "OSError"
