"""``ess bench`` end to end on a tiny real dataset and a real (randomly initialised) ResNet-18 run."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.evaluation.compare import compare_runs, comparison_markdown, write_comparison
from benchmarks.evaluation.evaluate import (
    REPRESENTATIONS,
    SETTINGS,
    BenchConfig,
    LeakageError,
    evaluate_run,
    room_warnings,
)
from benchmarks.evaluation.pretext import PRETEXT_KEYS
from benchmarks.evaluation.report import read_report, write_report
from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.provenance import file_sha256
from envsim.render.renderer import RenderConfig
from envsim.store.reader import DatasetReader
from envsim.store.splits import view_splits
from ess import bench as bench_cli
from ess.args import UserError
from pairing import PAIRS_NAME, PairConfig, build_pairs
from training.encoder import load_encoder, state_digest
from training.resnet import build_resnet

FAST = BenchConfig(knn_k=5, probe_epochs=30, pretext_views=48)
FAST_ARGS = ["--knn-k", "5", "--probe-epochs", "30", "--pretext-views", "48", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "data"
    render_dataset(
        resolve_sources(["procedural:3"]),
        config=DatasetConfig(render=RenderConfig(width=32, height=32),
                             trajectory=TrajectoryConfig(views=100, views_per_trajectory=10)),
        out=out,
    )
    build_pairs(out, config=PairConfig())  # the pretext labels of the SP, jigsaw and pose probes
    return out


def _fake_run(folder, data, *, method: str, seed: int, manifest_sha: str | None = None, train_scenes=None):
    """A run folder whose encoder.pt is a real randomly initialised ResNet-18, saved as training saves it."""
    reader = DatasetReader(data)
    splits = view_splits(reader.manifest, reader.meta()).summary()
    if train_scenes is not None:
        splits["train_scenes"] = train_scenes
    torch.manual_seed(100 + seed)  # not the bench's random-init seed: the two encoders differ
    folder.mkdir(parents=True)
    torch.save(
        {"arch": "resnet18", "state_dict": build_resnet("resnet18").state_dict(),
         "model_args": {"arch": "resnet18", "dim": 128, "method": method},
         "config": {"method": method, "arch": "resnet18", "image_size": 32, "seed": seed},
         "dataset": {"path": str(data), "manifest_sha256": manifest_sha or reader.manifest_sha256(), "splits": splits},
         "code_version": "test", "seed": seed, "step": 0},
        folder / "encoder.pt",
    )
    return folder


@pytest.fixture(scope="module")
def run_a(data, tmp_path_factory):
    return _fake_run(tmp_path_factory.mktemp("runs") / "moco-s1", data, method="moco", seed=1)


@pytest.fixture(scope="module")
def report_a(run_a, data):
    return evaluate_run(run_a, data, config=FAST)


def test_report_structure_splits_and_invariants(report_a, run_a, data):
    r = report_a
    reader = DatasetReader(data)
    splits = view_splits(reader.manifest, reader.meta())
    assert r["method"] == "moco" and r["arch"] == "resnet18" and r["training_seed"] == 1
    assert r["seeds"] == {"training": 1, "bench": 0, "random_init": 1} and r["image_size"] == 32
    assert isinstance(r["warnings"], list)
    assert r["bench_config"]["knn_k"] == 5
    assert r["dataset"]["manifest_sha256"] == reader.manifest_sha256() and r["dataset"]["same_as_training"] is True
    assert r["code_version"] and r["machine"]["cores"] >= 1
    assert r["splits"]["views"] == splits.summary()["views"]
    assert r["splits"]["test_scenes"] == ["house-0002"] and r["splits"]["train_scenes"] == ["house-0000", "house-0001"]
    room = reader.meta()["room"]
    assert r["splits"]["room_train_views"] == int(np.sum(splits.train & (room >= 0)))
    assert r["splits"]["queries"] == {
        "familiar": int(splits.familiar.sum()), "unfamiliar": int((splits.query & splits.unfamiliar).sum())
    }
    # The invariants the benchmark checks on itself.
    assert r["checks"]["probe_train_has_no_unfamiliar_views"] is True
    assert r["checks"]["run_never_trained_on_unfamiliar_scenes"] is True
    assert r["checks"]["encoder_unchanged"] is True
    model, record = load_encoder(run_a)
    assert r["checks"]["encoder_digest"] == state_digest(model) and r["checkpoint"]["sha256"] == record["sha256"]

    assert set(r["results"]) == set(REPRESENTATIONS)
    for rep in REPRESENTATIONS:
        assert set(r["results"][rep]) == set(SETTINGS)
        for setting in SETTINGS:
            m = r["results"][rep][setting]
            for key in ("room_linear_top1", "room_knn_top1", "loc_retrieval_median_m", "loc_retrieval_median_deg",
                        "loc_retrieval_recall_0.5m", "loc_retrieval_recall_1m", "loc_regression_median_m",
                        "loc_chance_median_m"):
                assert isinstance(m[key], float), (rep, setting, key)
            assert 0 <= m["room_linear_top1"] <= 1
            assert set(m["room_per_class"]) == set(reader.room_names)
            cm = np.array(m["room_confusion"])
            assert cm.shape == (len(reader.room_names),) * 2 and cm.sum() == m["room_test_views"]
            assert m["loc_queries"] == r["splits"]["queries"][setting]
            assert m["loc_oracle_median_m"] <= m["loc_retrieval_median_m"]
    # Chance draws do not depend on the features; trained and random-init encoders differ.
    res = r["results"]
    assert res["trained"]["familiar"]["loc_chance_median_m"] == res["pixels"]["familiar"]["loc_chance_median_m"]
    assert res["trained"]["familiar"] != res["random-init"]["familiar"]
    assert r["representations"]["pixels"].endswith("768-d")
    # Sanity: the nearest database camera is closer than a random one (the database covers the queries' places).
    px = r["results"]["pixels"]["familiar"]
    assert px["loc_oracle_median_m"] < px["loc_chance_median_m"]
    json.dumps(r, allow_nan=False)  # JSON-ready: NaN became None


def test_write_report(report_a, tmp_path):
    json_path, md_path = write_report(report_a, tmp_path / "out")
    assert read_report(json_path) == report_a
    md = md_path.read_text()
    assert "| pixels | unfamiliar |" in md and "train 160 views" in md and "house-0002" in md
    assert "Pretext probes on the labels of" in md and "| SP MAE dx |" in md and "jigsaw permutation %" in md
    assert md.count("| random-init | familiar |") == 2  # a row in both tables


def test_pretext_probes_in_the_report(report_a, data):
    """Every pretext key for every representation and setting, finite, on samples the report states."""
    from pairing import read_pairs

    reader = DatasetReader(data)
    splits = view_splits(reader.manifest, reader.meta())
    p = report_a["pretext"]
    assert p["skipped"] is None and p["max_views"] == 48 and p["jigsaw_grid"] == [3, 3]
    assert p["checks"] == {"samples_and_pairs_inside_their_split": True}
    assert p["labels"]["sha256"] == file_sha256(data / PAIRS_NAME)
    assert p["views"] == {"train": 48, "familiar": int(splits.familiar.sum()), "unfamiliar": 48}
    pairs = read_pairs(data / PAIRS_NAME, keys=("pair",))["pair"]
    for split, mask in (("train", splits.train), ("familiar", splits.familiar), ("unfamiliar", splits.unfamiliar)):
        inside = pairs[mask[pairs[:, 0]] & mask[pairs[:, 1]]]
        assert p["pose_pairs"][split] == np.unique(inside).size > 0  # every view of the split with a partner in it
    for rep in REPRESENTATIONS:
        for setting in SETTINGS:
            m = report_a["results"][rep][setting]
            for key in PRETEXT_KEYS:
                assert isinstance(m[key], (int, float)) and math.isfinite(m[key]), (rep, setting, key, m[key])
            assert m["sp_test_views"] == m["jigsaw_test_views"] == p["views"][setting]
            assert m["pose_test_pairs"] == p["pose_pairs"][setting]
            assert 0 <= m["jigsaw_perm_top1"] <= m["jigsaw_tile_acc"] <= 1  # a right permutation places every tile
            assert m["sp_r2"] <= 1 and min(m["sp_mae_dx"], m["sp_mae_dy"], m["sp_mae_log_scale"]) > 0
            assert 0 < m["pose_median_m"] and 0 < m["pose_median_deg"] <= 180
    res = report_a["results"]
    assert res["trained"]["familiar"]["sp_mae_dx"] != res["random-init"]["familiar"]["sp_mae_dx"]


def test_without_pairs_the_pretext_probes_are_skipped_and_nothing_else_changes(report_a, run_a, data, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(data, bare, ignore=shutil.ignore_patterns(PAIRS_NAME))
    r = evaluate_run(run_a, bare, config=FAST)
    assert "ess pair" in r["pretext"]["skipped"]
    for rep in REPRESENTATIONS:
        for setting in SETTINGS:
            m, full = r["results"][rep][setting], report_a["results"][rep][setting]
            assert all(m[key] is None for key in PRETEXT_KEYS)
            assert {k: v for k, v in m.items() if k not in PRETEXT_KEYS} == {
                k: v for k, v in full.items() if k not in PRETEXT_KEYS}  # room and localization untouched
    _, md_path = write_report(r, tmp_path / "out")
    assert "Pretext probes (SP, jigsaw, relative pose): skipped: no pairs.h5" in md_path.read_text()


def test_encoder_changed_during_evaluation_raises(run_a, data, monkeypatch):
    import training.encoder as enc

    real = enc.embed

    def tampering(model, images, **kw):
        with torch.no_grad():
            next(model.parameters()).add_(1.0)
        return real(model, images, **kw)

    monkeypatch.setattr(enc, "embed", tampering)
    with pytest.raises(RuntimeError, match="changed"):
        evaluate_run(run_a, data, config=FAST)


def test_leakage_is_refused(run_a, data, tmp_path, monkeypatch):
    import envsim.store.splits as splits_mod

    real = splits_mod.view_splits

    def leaky(manifest, meta):
        s = real(manifest, meta)
        return splits_mod.ViewSplits(**{**s.__dict__, "train": s.train | s.unfamiliar})

    monkeypatch.setattr(splits_mod, "view_splits", leaky)
    with pytest.raises(LeakageError, match="unfamiliar"):
        evaluate_run(run_a, data, config=FAST)
    monkeypatch.undo()
    seen = _fake_run(tmp_path / "seen", data, method="moco", seed=0, train_scenes=["house-0000", "house-0002"])
    with pytest.raises(LeakageError, match="house-0002"):
        evaluate_run(seen, data, config=FAST)


def test_room_warnings_name_the_problem():
    names = ["bathroom", "bedroom", "kitchen"]
    room = np.array([1, 1, 1, 1, 0, 2, 2, 1])
    train = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)  # bedroom only
    tests = {"familiar": np.array([0, 0, 0, 0, 1, 1, 0, 0], bool), "unfamiliar": np.array([0, 0, 0, 0, 0, 0, 0, 1], bool)}
    w = room_warnings(room, train, tests, names)
    assert any("training views hold 1 room class(es) (bedroom)" in x for x in w)
    assert any("unfamiliar test views hold 1 room class(es) (bedroom)" in x for x in w)
    train[5] = True  # + kitchen: two classes to train on; familiar lacks nothing but has bathroom + kitchen
    tests["familiar"] = np.array([0, 0, 0, 0, 1, 0, 1, 0], bool)
    w = room_warnings(room, train, tests, names)
    assert any("bedroom have training views but no familiar test view" in x for x in w)
    assert not any("probes' training" in x for x in w)
    tests["familiar"][0] = True
    assert len(room_warnings(room, train, tests, names)) == 1  # only the unfamiliar split's single class


def test_bench_config_validates():
    with pytest.raises(ValueError, match="knn_k"):
        BenchConfig(knn_k=0)
    with pytest.raises(ValueError, match="seed"):
        BenchConfig(seed=-1)
    with pytest.raises(ValueError, match="device"):
        BenchConfig(device="gpu0")


def _fake_report(report, *, method, seed, sha, value, knn=None, random_knn=None):
    r = copy.deepcopy(report)
    r["method"], r["training_seed"], r["checkpoint"]["sha256"], r["run"] = method, seed, sha, f"runs/{sha}"
    r["seeds"] = {"training": seed, "bench": 0, "random_init": seed}
    r["results"]["trained"]["familiar"]["room_linear_top1"] = value
    if knn is not None:
        r["results"]["trained"]["familiar"]["room_knn_top1"] = knn
    if random_knn is not None:
        r["results"]["random-init"]["familiar"]["room_knn_top1"] = random_knn
    return r


def test_compare_runs_mean_std(report_a, tmp_path):
    reports = [
        _fake_report(report_a, method="ess-mb", seed=0, sha="a", value=0.5),
        _fake_report(report_a, method="ess-mb", seed=1, sha="b", value=0.7),
        _fake_report(report_a, method="moco", seed=0, sha="c", value=0.2),
    ]
    c = compare_runs(reports)
    names = [row["name"] for row in c["rows"]]
    assert names == ["moco", "ess-mb", "random-init (resnet18)", "pixels"]
    mb = c["rows"][1]
    stat = mb["metrics"]["familiar"]["room_linear_top1"]
    assert stat["mean"] == pytest.approx(0.6) and stat["n"] == 2
    assert stat["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert mb["n_runs"] == 2 and mb["training_seeds"] == [0, 1]
    assert c["rows"][0]["metrics"]["familiar"]["room_linear_top1"] == {"mean": 0.2, "std": 0.0, "n": 1}
    base = c["rows"][3]["metrics"]["unfamiliar"]["loc_retrieval_median_m"]
    assert base["mean"] == pytest.approx(report_a["results"]["pixels"]["unfamiliar"]["loc_retrieval_median_m"])
    assert base["n"] == 1  # pixels have no seed: counted once
    assert c["rows"][2]["n_runs"] == 2 and c["rows"][2]["init_seeds"] == [0, 1]  # one floor per init seed
    md = comparison_markdown(c)
    assert "| ess-mb | 2 | 60.0 ± 14.1 |" in md and "familiar room linear %" in md
    paths = write_comparison(c, tmp_path / "cmp")
    assert [p.name for p in paths] == ["comparison.json", "comparison.md", "comparison.png"]
    with Image.open(paths[2]) as im:
        assert im.size[0] > 100
    with pytest.raises(ValueError, match="same checkpoint"):
        compare_runs([reports[0], reports[0]])
    other = copy.deepcopy(reports[1])
    other["dataset"]["manifest_sha256"] = "0" * 64
    with pytest.raises(ValueError, match="different datasets"):
        compare_runs([reports[0], other])


def test_compare_any_method_name(report_a):
    """New methods (byol, sarl, ...) come after moco, ess-mb, ess-mw, by name, each paired against moco."""
    reports = [_fake_report(report_a, method=m, seed=s, sha=f"{m}{s}", value=0.1 * (i + 1))
               for i, m in enumerate(("sarl", "moco", "byol", "ess-mw")) for s in range(2)]
    for r in reports:
        r["results"]["trained"]["familiar"]["jigsaw_perm_top1"] = 0.5 if r["method"] == "sarl" else 0.25
    c = compare_runs(reports)
    assert [row["name"] for row in c["rows"]] == ["moco", "ess-mw", "byol", "sarl", "random-init (resnet18)", "pixels"]
    assert {"byol - moco", "sarl - moco", "ess-mw - moco", "sarl - random-init"} <= set(c["differences"])
    assert c["differences"]["sarl - moco"]["familiar"]["jigsaw_perm_top1"]["mean"] == pytest.approx(0.25)
    md = comparison_markdown(c)
    head = next(line for line in md.splitlines() if line.startswith("| method |"))
    cols = head.split(" | ")
    assert cols.index("familiar room linear %") < cols.index("familiar regression median m") < cols.index(
        "familiar SP R²") < cols.index("familiar jigsaw perm %") < cols.index("familiar pose median °")
    assert "| sarl | 2 |" in md and "| sarl - moco | 2 |" in md


def test_compare_paired_differences_and_checks(report_a):
    """ESS minus MoCo per training seed with a t interval; the floor check is the comparison's outcome."""
    moco = [0.40, 0.45, 0.50]
    ess = [0.46, 0.49, 0.58]  # differences 0.06, 0.04, 0.08
    rand = [0.30, 0.36, 0.33]
    reports = [_fake_report(report_a, method="moco", seed=s, sha=f"m{s}", value=0.3, knn=moco[s], random_knn=rand[s])
               for s in range(3)]
    reports += [_fake_report(report_a, method="ess-mb", seed=s, sha=f"e{s}", value=0.3, knn=ess[s], random_knn=rand[s])
                for s in range(3)]
    c = compare_runs(reports)
    d = c["differences"]["ess-mb - moco"]["familiar"]["room_knn_top1"]
    diffs = np.array(ess) - np.array(moco)
    half = 4.302652729911275 * np.std(diffs, ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert d["n"] == 3 and d["mean"] == pytest.approx(diffs.mean())
    assert d["ci_low"] == pytest.approx(diffs.mean() - half) and d["ci_high"] == pytest.approx(diffs.mean() + half)
    r = c["differences"]["moco - random-init"]["familiar"]["room_knn_top1"]
    assert r["mean"] == pytest.approx(np.mean(np.array(moco) - np.array(rand)))
    assert c["differences"]["ess-mb - moco"]["seeds"] == [0, 1, 2]
    check = c["checks"]["ess-mb beats random-init on familiar room k-NN by more than the spread"]
    assert check["passed"] is True and check["margin"] == pytest.approx(np.mean(ess) - np.mean(rand))
    md = comparison_markdown(c)
    assert "| ess-mb - moco | 3 |" in md and "[+" in md
    # a method inside the floor's spread fails the check
    weak = [_fake_report(report_a, method="moco", seed=s, sha=f"w{s}", value=0.3, knn=rand[s] + 0.01,
                         random_knn=rand[s]) for s in range(3)]
    check = compare_runs(weak)["checks"]["moco beats random-init on familiar room k-NN by more than the spread"]
    assert check["passed"] is False
    assert "moco beats random-init on familiar room k-NN by more than the spread: **no**" in comparison_markdown(
        compare_runs(weak))


def _cli(argv):
    p = argparse.ArgumentParser()
    bench_cli.add_arguments(p)
    return bench_cli.run(p.parse_args(argv))


def test_cli_single_run_then_compare(report_a, run_a, data, tmp_path, capsys, caplog):
    # A run trained on "another rendering": evaluated with a warning, both hashes recorded.
    run_b = _fake_run(tmp_path / "essmb-s2", data, method="ess-mb", seed=2, manifest_sha="f" * 64)
    with caplog.at_level(logging.WARNING):
        assert _cli([str(run_b), "--data", str(data), *FAST_ARGS]) == 0
    assert any("trained on dataset ffffffffffff" in rec.getMessage() for rec in caplog.records)
    out = capsys.readouterr().out
    assert "| trained | familiar |" in out
    rep_b = read_report(run_b)
    assert rep_b["dataset"]["same_as_training"] is False and rep_b["dataset"]["trained_on_manifest_sha256"] == "f" * 64

    write_report(report_a)  # run_a/bench/bench.json, matching these settings: reused, not re-evaluated
    cmp_dir = tmp_path / "cmp"
    assert _cli([str(run_a), str(run_b), "--compare", "--out", str(cmp_dir), *FAST_ARGS]) == 0
    assert "| moco | 1 |" in capsys.readouterr().out
    comparison = json.loads((cmp_dir / "comparison.json").read_text())
    assert [row["name"] for row in comparison["rows"]] == ["moco", "ess-mb", "random-init (resnet18)", "pixels"]
    assert (cmp_dir / "comparison.png").is_file()


def test_cli_bad_input(run_a, data, tmp_path):
    with pytest.raises(UserError, match="encoder.pt"):
        _cli([str(tmp_path), "--data", str(data), *FAST_ARGS])
    with pytest.raises(UserError, match="not a dataset"):
        _cli([str(run_a), "--data", str(tmp_path), *FAST_ARGS])
    with pytest.raises(UserError, match="--data"):
        _cli([str(run_a), *FAST_ARGS])
    with pytest.raises(UserError, match="--compare"):
        _cli([str(run_a), str(run_a), "--data", str(data), *FAST_ARGS])
    fresh = _fake_run(tmp_path / "new", data, method="moco", seed=3)
    with pytest.raises(UserError, match="pass --data"):
        _cli([str(fresh), "--compare", *FAST_ARGS])
