"""End-to-end render jobs: determinism, resume, provenance, bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import trimesh

from envsim.job import DatasetConfig, DatasetError, load_poses, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig, SemanticMode
from envsim.scenes.rooms import ROOM_NAMES
from envsim.store.shards import read_manifest, read_shard
from tests.conftest import room_with_furniture

SMALL = DatasetConfig(
    seed=3,
    shard_size=7,
    render=RenderConfig(width=24, height=16, semantic=SemanticMode.ROOM),
    trajectory=TrajectoryConfig(views=10, views_per_trajectory=4),
)


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("shard-*.h5"))}


def test_procedural_dataset_is_complete_labelled_and_reproducible(tmp_path):
    sources = resolve_sources(["procedural:2"])
    m1 = render_dataset(sources, config=SMALL, out=tmp_path / "a")
    m2 = render_dataset(sources, config=SMALL, out=tmp_path / "b")
    assert m1["complete"] and m1["total_samples"] == 20
    assert [s["samples"] for s in m1["shards"]] == [7, 7, 6]
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")  # same seed, same bytes
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    for entry in m1["shards"]:
        p = tmp_path / "a" / entry["file"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == entry["sha256"]
    data = [read_shard(tmp_path / "a" / e["file"]) for e in m1["shards"]]
    scene = np.concatenate([d["scene"] for d in data])
    assert scene.tolist() == [0] * 10 + [1] * 10
    room = np.concatenate([d["room"] for d in data])
    assert (room >= 0).mean() > 0.5  # cameras mostly stand inside a labelled room
    attrs = data[0]["attrs"]
    assert attrs["room_names"] == list(ROOM_NAMES) and attrs["scene_names"] == ["house-0000", "house-0001"]
    assert json.loads(attrs["config"])["seed"] == 3 and attrs["code_version"]
    d = data[0]
    assert d["rgb"].shape == (7, 16, 24, 3) and d["depth"].dtype == np.float32
    assert d["semantic"].dtype == np.uint16 and d["semantic"].max() <= len(ROOM_NAMES)
    np.testing.assert_allclose(d["pose"][:, :3, 3], d["position"], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d["rotation"], axis=1), 1.0, atol=1e-6)
    assert (d["depth"] > 0).mean() > 0.95  # inside a sealed house
    other = render_dataset(sources, config=DatasetConfig(**{**SMALL.__dict__, "seed": 4}), out=tmp_path / "c")
    assert _digests(tmp_path / "c") != _digests(tmp_path / "a")
    assert other["complete"]


def test_resume_renders_only_missing_shards_and_gives_same_bytes(tmp_path):
    sources = resolve_sources(["procedural:1"])
    out = tmp_path / "d"
    render_dataset(sources, config=SMALL, out=out)
    before = _digests(out)
    (out / "shard-00001.h5").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["complete"] = False
    manifest["shards"] = manifest["shards"][:1]  # as if killed after the first shard
    (out / "manifest.json").write_text(json.dumps(manifest))
    seen = []
    render_dataset(sources, config=SMALL, out=out, progress=seen.append)
    assert seen[0] == 7  # the first shard was found on disk, not rendered again
    assert sum(seen) == 10
    assert _digests(out) == before
    assert read_manifest(out)["complete"]


def test_folder_holding_another_dataset_is_refused(tmp_path):
    sources = resolve_sources(["procedural:1"])
    render_dataset(sources, config=SMALL, out=tmp_path / "d")
    with pytest.raises(DatasetError, match="different dataset"):
        render_dataset(sources, config=DatasetConfig(**{**SMALL.__dict__, "seed": 9}), out=tmp_path / "d")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        render_dataset(sources, config=SMALL, out=tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_poses_file_renders_exactly_those_poses(tmp_path):
    mesh = room_with_furniture(2)
    zup = mesh.copy()
    zup.vertices = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 2], mesh.vertices[:, 1]], axis=1)
    zup.export(tmp_path / "scan.ply")
    poses = [
        {"position": [0.0, 1.5, 0.0], "rotation": [1.0, 0.0, 0.0, 0.0]},
        {"position": [1.0, 1.2, -0.5], "rotation": [0.9238795, 0.0, 0.3826834, 0.0]},
    ]
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    from envsim.scenes.scene import UpAxis

    m = render_dataset(
        resolve_sources([str(tmp_path / "scan.ply")], up=UpAxis.Z),
        config=DatasetConfig(render=RenderConfig(width=32, height=24, hfov_deg=90)),
        out=tmp_path / "out",
        poses=load_poses(tmp_path / "poses.json"),
    )
    d = read_shard(tmp_path / "out" / m["shards"][0]["file"])
    np.testing.assert_allclose(d["position"], [p["position"] for p in poses], atol=1e-6)
    np.testing.assert_allclose(d["rotation"], [p["rotation"] for p in poses], atol=1e-6)
    assert d["room"].tolist() == [-1, -1]  # no sidecar: rooms unknown
    # Camera 0 faces the wall z = -2.5 squarely: z-depth is 2.5 m across it (furniture is below 1 m).
    assert d["depth"][0, 12, 16] == pytest.approx(2.5, abs=1e-4)


@pytest.mark.parametrize(
    "rotation, message",
    [([1.0, 0.2, 0.0, 0.0], "not a unit quaternion"), ([1.0, 0.0, 0.0], "finite"), ("x", "needs")],
)
def test_bad_poses(tmp_path, rotation, message):
    (tmp_path / "p.json").write_text(json.dumps([{"position": [0, 1, 0], "rotation": rotation}]))
    with pytest.raises(DatasetError, match=message):
        load_poses(tmp_path / "p.json")


def test_scene_without_navigable_area_fails_cleanly(tmp_path):
    trimesh.creation.box((0.05, 2.0, 3.0)).export(tmp_path / "low.ply")  # a lone thin wall: nowhere to stand
    with pytest.raises(DatasetError, match="low"):
        render_dataset(resolve_sources([str(tmp_path / "low.ply")]), config=SMALL, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing left behind


def test_resolve_sources_errors(tmp_path):
    with pytest.raises(DatasetError, match="procedural:N"):
        resolve_sources(["procedural:zero"])
    with pytest.raises(DatasetError, match="not found"):
        resolve_sources([str(tmp_path / "missing.glb")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no mesh files"):
        resolve_sources([str(tmp_path / "empty")])
    names = [s.name for s in resolve_sources(["procedural:2", "procedural:1"])]
    assert names == ["house-0000", "house-0001", "house-0002"]


def test_light_variants_share_pose_and_differ_in_light(tmp_path):
    from envsim.render.renderer import LightingConfig

    cfg = DatasetConfig(
        seed=2,
        light_variants=3,
        render=RenderConfig(width=16, height=12, lighting=LightingConfig(jitter=True)),
        trajectory=TrajectoryConfig(views=4, views_per_trajectory=4),
    )
    m = render_dataset(resolve_sources(["procedural:1"]), config=cfg, out=tmp_path / "v")
    assert m["total_samples"] == 12
    d = read_shard(tmp_path / "v" / m["shards"][0]["file"])
    pose = d["pose"].reshape(4, 3, 4, 4)
    assert np.all(pose == pose[:, :1])  # consecutive triples share the pose
    assert np.array_equal(d["depth"][0], d["depth"][1])
    assert not np.array_equal(d["rgb"][0], d["rgb"][1]) and not np.array_equal(d["light"][0], d["light"][1])
    with pytest.raises(ValueError, match="light-jitter"):
        DatasetConfig(light_variants=2)


def test_read_many_matches_the_shards_in_any_order(tmp_path):
    """Random order, repeats, runs crossing shard ends and a lone row: every view as the shards hold it."""
    from envsim.store.reader import DatasetReader

    m = render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=tmp_path / "d")
    whole = {k: np.concatenate([read_shard(tmp_path / "d" / e["file"])[k] for e in m["shards"]])
             for k in ("rgb", "depth", "semantic")}
    reader = DatasetReader(tmp_path / "d")
    rng = np.random.default_rng(0)
    for indices in (rng.permutation(20), rng.integers(0, 20, 33), np.arange(5, 16), np.array([13]),
                    np.array([19, 0, 19, 6, 7, 8, 6])):
        for key, rows in whole.items():
            got = reader.read_many(key, indices)
            assert got.dtype == rows.dtype
            np.testing.assert_array_equal(got, rows[indices])
    assert reader.read_many("rgb", np.zeros(0, np.int64)).shape == (0, 16, 24, 3)
    with pytest.raises(IndexError):
        reader.read_many("depth", np.array([3, 20]))
    reader.close()
