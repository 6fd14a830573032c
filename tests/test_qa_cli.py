"""``ess qa`` and ``ess qa-score`` as a user meets them, on tiny procedural datasets rendered with and without
``--semantic object``: the files, images redrawn from ``meta``, depth thresholds on the saved depth,
byte-identical exports, one-line errors, and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envsim.store.reader import DatasetReader
from ess.main import main
from pairing import qa_reward
from pairing.qa.images import decode_png, task_images

RENDER = ["--views", "12", "--size", "96x72", "--views-per-trajectory", "4", "--no-progress"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    with_ids, without = root / "objects", root / "plain"
    assert main(["render", "procedural:2", "--out", str(with_ids), *RENDER, "--semantic", "object"]) == 0
    assert main(["render", "procedural:1", "--out", str(without), "--views", "4", "--size", "32x24",
                 "--views-per-trajectory", "2", "--no-progress"]) == 0
    return with_ids, without


@pytest.fixture(scope="module")
def export(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "qa"
    assert main(["qa", str(datasets[0]), "--out", str(out), "--split", "all", "--per-view", "2", "--no-progress"]) == 0
    return out


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "qa.jsonl").read_text().splitlines()]


def files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_export_writes_records_images_sheet_and_manifest(datasets, export):
    recs = records(export)
    tasks = [r["task"] for r in recs]
    assert set(tasks) == {"reorder", "flip", "inpaint", "depth", "position"}
    keys = ["id", "task", "view", "scene", "images", "prompt", "answer", "answer_struct", "meta"]
    for r in recs:
        assert list(r) == keys
        assert r["prompt"].endswith("<answer> </answer>.") and all((export / p).is_file() for p in r["images"])
        assert len(r["images"]) == (5 if r["task"] == "inpaint" else 1)
        assert qa_reward(f"<think>.</think><answer>{r['answer']}</answer>", r) == 1.0
    assert len({r["id"] for r in recs}) == len(recs)
    manifest = json.loads((export / "manifest.json").read_text())
    reader = DatasetReader(datasets[0])
    assert manifest["format"] == "ess-qa/1" and manifest["dataset_manifest_sha256"] == reader.manifest_sha256()
    assert manifest["seed"] == 0 and manifest["config"]["per_view"] == 2 and manifest["code_version"]
    assert manifest["counts"] == {t: tasks.count(t) for t in ("reorder", "flip", "inpaint", "depth", "position")}
    assert manifest["views"] == len(reader) == 24 and manifest["records"] == len(recs)
    for task, skipped in manifest["skips"].items():
        assert manifest["counts"][task] + sum(skipped.values()) == 2 * 24
    assert decode_png((export / "contact_sheet.png").read_bytes()).shape[0] > 5 * 100
    assert not list(export.parent.glob(".*.partial"))


def test_every_image_is_redrawn_from_its_meta(datasets, export):
    reader = DatasetReader(datasets[0])
    for r in records(export):
        rgb = reader.read("rgb", r["view"])
        for path, image in zip(r["images"], task_images(r["task"], rgb, r["meta"]), strict=True):
            np.testing.assert_array_equal(decode_png((export / path).read_bytes()), image, err_msg=path)


def test_depth_regions_meet_the_thresholds_on_the_saved_depth(datasets, export):
    reader = DatasetReader(datasets[0])
    depth_records = [r for r in records(export) if r["task"] == "depth"]
    assert depth_records
    for r in depth_records:
        depth = reader.read("depth", r["view"]).astype(np.float64)
        regions = [depth[r0:r1, c0:c1] for r0, c0, r1, c1 in r["meta"]["boxes"]]
        assert all(np.all(g > 0) and g.max() - g.min() < 0.15 for g in regions)
        medians = [float(np.median(g)) for g in regions]
        assert min(abs(medians[i] - medians[j]) for i, j in ((0, 1), (0, 2), (1, 2))) > 0.05
        assert [medians[n - 1] for n in r["answer_struct"]] == sorted(medians)


def test_position_records_name_procedural_objects(export):
    pos = [r for r in records(export) if r["task"] == "position"]
    assert pos
    for r in pos:
        a, b = r["meta"]["objects"]
        assert a["category"] and b["category"] and a["category"] not in ("wall", "floor", "ceiling")
        assert r["meta"]["frame"] == ("object" if a["yaw"] is not None else "camera")
        right, front = r["meta"]["offset_m"]["right"], r["meta"]["offset_m"]["front"]
        assert r["answer_struct"] == ["right" if right > 0 else "left", "front" if front > 0 else "behind"]
        assert min(abs(right), abs(front)) >= 0.25


def test_same_seed_same_bytes_other_seed_other_questions(datasets, export, tmp_path):
    again = tmp_path / "again"
    args = ["--split", "all", "--per-view", "2", "--no-progress"]
    assert main(["qa", str(datasets[0]), "--out", str(again), *args]) == 0
    assert files(again) == files(export)
    other = tmp_path / "other"
    assert main(["qa", str(datasets[0]), "--out", str(other), *args, "--seed", "1"]) == 0
    assert (other / "qa.jsonl").read_bytes() != (export / "qa.jsonl").read_bytes()


def test_tasks_grid_and_split_options(datasets, tmp_path, capsys):
    out = tmp_path / "some"
    args = ["--tasks", "flip,depth", "--grid", "2x4", "--no-progress"]
    assert main(["qa", str(datasets[0]), "--out", str(out), *args]) == 0
    recs = records(out)
    assert {r["task"] for r in recs} <= {"flip", "depth"} and recs
    assert all(r["meta"]["grid"] == [2, 4] for r in recs if r["task"] == "flip")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"] == "train" and manifest["views"] < 24 and manifest["tasks"] == ["flip", "depth"]
    assert "flip" in capsys.readouterr().out


def test_a_dataset_without_object_ids(datasets, tmp_path, capsys):
    assert main(["qa", str(datasets[1]), "--out", str(tmp_path / "a"), "--tasks", "position", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "needs per-pixel object ids" in line and "--semantic object" in line and "--tasks" in line
    assert not (tmp_path / "a").exists() and not list(tmp_path.glob(".*.partial"))
    assert main(["qa", str(datasets[1]), "--out", str(tmp_path / "b"), "--split", "all", "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["tasks"] == ["reorder", "flip", "inpaint", "depth"]


def test_user_mistakes_are_one_line(datasets, export, tmp_path, capsys):
    assert main(["qa", str(tmp_path), "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "not a dataset folder" in one_error_line(capsys)
    assert main(["qa", str(datasets[0]), "--out", str(export), "--no-progress"]) == 2
    assert "--force" in one_error_line(capsys)
    assert main(["qa", str(datasets[0]), "--out", str(datasets[0]), "--no-progress"]) == 2
    assert "not empty" in one_error_line(capsys)
    assert main(["qa", str(datasets[0]), "--out", str(tmp_path / "x"), "--tasks", "jigsaw", "--no-progress"]) == 2
    assert "unknown task" in one_error_line(capsys)
    with pytest.raises(SystemExit):
        main(["qa", str(datasets[0]), "--out", str(tmp_path / "x"), "--grid", "1x1"])
    assert "grid" in capsys.readouterr().err


def test_force_replaces_an_export(datasets, tmp_path):
    out = tmp_path / "qa"
    assert main(["qa", str(datasets[0]), "--out", str(out), "--tasks", "flip", "--no-progress"]) == 0
    assert main(["qa", str(datasets[0]), "--out", str(out), "--tasks", "depth", "--force", "--no-progress"]) == 0
    assert {r["task"] for r in records(out)} == {"depth"}
    assert all(p.name.startswith("depth-") for p in (out / "images").iterdir())


def test_qa_score(export, tmp_path, capsys):
    recs = records(export)
    responses = tmp_path / "responses.jsonl"
    lines = []
    for k, r in enumerate(recs):
        if k % 3 == 0:
            lines.append({"id": r["id"], "response": f"<think>hm</think><answer>{r['answer']}</answer>"})
        elif k % 3 == 1:
            lines.append({"id": r["id"], "response": "no idea"})
    responses.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["qa-score", str(export), "--responses", str(responses), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    answered = len(lines)
    assert scores["all"]["questions"] == len(recs) and scores["all"]["answered"] == answered
    assert scores["all"]["reward"] == pytest.approx(len(recs[::3]) / answered)
    assert main(["qa-score", str(export), "--responses", str(responses)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["task", "answered", "accuracy", "format", "reward"] and "position" in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "nope-000000-0", "response": "A"}) + "\n")
    assert main(["qa-score", str(export), "--responses", str(bad)]) == 2
    assert "not in" in one_error_line(capsys)
    bad.write_text("{not json\n")
    assert main(["qa-score", str(export), "--responses", str(bad)]) == 2
    assert "bad.jsonl:1 is not JSON" in one_error_line(capsys)
    assert main(["qa-score", str(tmp_path), "--responses", str(responses)]) == 2
    assert "holds no QA export" in one_error_line(capsys)
    assert main(["qa-score", str(export), "--responses", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in one_error_line(capsys)


def write_replica_scan(folder: Path) -> None:
    """A Replica-style scan (Z-up ``mesh.ply``, ``habitat/mesh_semantic.ply`` with an ``object_id`` per face):
    the furnished test room, the room itself object 0, each box one object, the sphere the last."""
    from tests.conftest import room_with_furniture

    mesh = room_with_furniture(4)
    v = np.asarray(mesh.vertices, np.float64)[:, [0, 2, 1]] * [1.0, -1.0, 1.0]  # Y-up -> Z-up: (x, -z, y)
    faces = np.asarray(mesh.faces)
    object_id = np.minimum(np.arange(len(faces)) // 12, 7)  # 12 triangles per box

    def ply(extra: list[str], rows: list[str]) -> str:
        head = ["ply", "format ascii 1.0", f"element vertex {len(v)}", *(f"property float {a}" for a in "xyz"),
                f"element face {len(faces)}", "property list uchar int vertex_indices", *extra, "end_header"]
        return "\n".join(head + [" ".join(map(str, p)) for p in v] + rows) + "\n"

    (folder / "habitat").mkdir(parents=True)
    (folder / "mesh.ply").write_text(ply([], [f"3 {a} {b} {c}" for a, b, c in faces]))
    (folder / "habitat" / "mesh_semantic.ply").write_text(
        ply(["property int object_id"], [f"3 {a} {b} {c} {o}" for (a, b, c), o in zip(faces, object_id)]))
    info = {"classes": [{"id": 1, "name": "thing"}], "objects": [{"id": i, "class_id": 1} for i in range(8)]}
    (folder / "habitat" / "info_semantic.json").write_text(json.dumps(info))


def test_a_scan_with_instance_ids(tmp_path, capsys):
    write_replica_scan(tmp_path / "replica" / "room_9")
    turns = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    poses = [{"position": [x, 1.6, z], "rotation": [float(np.cos(a / 2)), 0.0, float(np.sin(a / 2)), 0.0]}
             for a in turns for x, z in ((0.0, 0.0), (-1.5, 1.5), (1.5, -1.0))]
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    data, out = tmp_path / "data", tmp_path / "qa"
    assert main(["render", str(tmp_path / "replica"), "--poses", str(tmp_path / "poses.json"), "--size", "64x48",
                 "--semantic", "object", "--out", str(data), "--no-progress"]) == 0
    assert main(["qa", str(data), "--out", str(out), "--tasks", "position", "--split", "all", "--no-progress"]) == 0
    assert "position" in capsys.readouterr().out
    pos = records(out)
    assert pos
    for r in pos:  # instance ids without categories: anonymous objects, the camera's frame
        a, b = r["meta"]["objects"]
        assert r["meta"]["frame"] == "camera" and a["category"] is None and 1 <= a["object"] <= 7
        assert "A (an object, red box)" in r["prompt"] and a["object"] != b["object"]
    reader = DatasetReader(data)
    for r in pos:
        image = task_images("position", reader.read("rgb", r["view"]), r["meta"])[0]
        np.testing.assert_array_equal(decode_png((out / r["images"][0]).read_bytes()), image)
