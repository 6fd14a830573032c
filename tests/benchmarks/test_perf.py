"""The performance suite on tiny sizes: report schema, its own invariants, Markdown, README regeneration.

Only the plumbing is tested here: the figures of a tiny run on a shared machine say nothing about speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.perf import suite as perf
from ess.main import main as ess

TINY = perf.SuiteConfig(
    render_views=8,
    render_sizes=(32,),
    render_batch=4,  # two batches: the job has a steady state
    render_repeats=1,
    render_triangles=20_000,  # one subdivision level of the ~6,000-triangle house: the headline path, cheaply
    pair_sizes=(300, 1200),
    pair_views_per_scene=600,
    pair_brute_max=1200,
    covisibility_views=48,
    covisibility_size=32,
    shard_samples=24,
    shard_size=32,
    shard_views=8,
    shard_repeats=1,
    loader_houses=1,
    loader_views=32,
    loader_size=32,
    loader_batch=8,
    loader_repeats=1,
    train_queue=512,
    train_cpu_size=32,
    train_cpu_batch=16,
    train_cpu_steps=1,
    train_cpu_warmup=0,
    train_diagnostics=False,
    train_threads=1,  # two threads on a shared 2-core machine stall each other
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("perf")
    report = perf.run_suite(quick=True, out=out, only=None, config=TINY, allow_dirty=True)
    return out, report


def test_render_headline_is_the_scan_sized_scene_then_the_small_house(suite):
    _, report = suite
    rows = report["sections"]["render"]["report"]["results"]
    assert [r["scene"] for r in rows] == ["scan-sized", "small"]
    assert rows[0]["triangles"] >= 20_000 > rows[1]["triangles"]
    names = [f["figure"] for f in report["sections"]["render"]["figures"]]
    assert names[0].startswith("CPU render in memory, scan-sized house") and len(names) == 8
    steady = [f for f in report["sections"]["render"]["figures"] if "after the first batch" in f["figure"]]
    assert len(steady) == 2 and all(f["value"] > 0 and f["target"] is None for f in steady)
    for row in rows:  # the CPU accounting is consistent with the wall-clock figures it explains
        assert 0 < row["steady_core_use"] <= 1.1 and 0 < row["raw_core_use"] <= 1.1
        full = row["to_shards_steady_full_cores_ratio"]
        assert full == pytest.approx(row["to_shards_steady_ratio_to_raw"] / row["steady_core_use"])
        assert row["to_shards_full_cores_ratio"] < full and row["prepare_s"] > 0


def test_every_section_ran_or_says_why(suite):
    _, report = suite
    assert list(report["sections"]) == list(perf.SECTIONS)
    assert perf.failures(report) == []
    for name, section in report["sections"].items():
        assert section["status"] in ("ok", "skipped"), name
        if section["status"] == "skipped":
            assert section["reason"]
        else:
            assert section["figures"], name
            assert section["seconds"] > 0 and len(section["load_average"]) == 2
    for name in ("render", "pairs", "shards", "loader", "training"):  # what a CPU-only machine always runs
        assert report["sections"][name]["status"] == "ok"


def test_every_figure_has_a_reference_and_a_ratio(suite):
    out, report = suite
    assert json.loads((out / "perf.json").read_text()) == report  # what was returned is what was written
    figs = perf.figures(report)
    keys = {"section", "figure", "value", "unit", "reference", "reference_value", "ratio", "target", "pass", "setup"}
    for f in figs:
        assert set(f) == keys, f["figure"]
        assert f["value"] > 0 and f["reference_value"] > 0 and f["ratio"] > 0, f["figure"]
        assert f["reference"] and f["setup"]
        assert (f["target"] is None) == (f["pass"] is None), f["figure"]
    names = " | ".join(f["figure"] for f in figs)
    for expected in ("CPU render to shards, scan-sized house", "pair building, 300 views", "pair building scaling exponent",
                     "covisibility kernel", "shard write (ShardWriter), lzf", "shard read (read_shard), lzf",
                     "loader, 0 workers", "vs trainer consumption", "MoCo-v2 step, CPU, ours"):
        assert expected in names
    shards = next(f for f in figs if f["figure"] == "shard write (ShardWriter), lzf")
    assert shards["target"] == ">= 0.8" and isinstance(shards["pass"], bool)


def test_records_machine_versions_and_scene(suite):
    _, report = suite
    assert report["mode"] == "custom" and report["config"]["shard_samples"] == 24
    assert report["machine"]["cores"] >= 1 and report["machine"]["code_version"]
    for lib in ("numpy", "torch", "h5py", "HDF5"):
        assert lib in report["versions"]
    assert report["sections"]["render"]["scene"]["triangles"] > 1000
    if report["sections"]["gpu_render"]["status"] == "skipped":
        reason = report["sections"]["gpu_render"]["reason"]
        assert "CUDA" in reason or "Mitsuba" in reason or "gpu_render" in reason


def test_invariants_hold(suite):
    _, report = suite
    s = report["sections"]
    for row in s["shards"]["report"]["results"]:
        assert row["bytes_match"]
        assert row["bytes_read"] == row["bytes_written"] == s["shards"]["report"]["data"]["raw_bytes"]
    assert s["loader"]["report"]["images_match"]
    assert {r["workers"] for r in s["loader"]["report"]["results"]} >= {0, 2}
    assert all(r["brute_matches"] for r in s["pairs"]["report"]["results"])
    assert s["pairs"]["report"]["covisibility"]["reference_matches"]
    parity = s["training"]["report"]["cpu"]["parity"]
    assert parity["max_logit_diff"] < 1e-3 and abs(parity["loss"] - parity["reference_loss"]) < 1e-4


def test_markdown_renders(suite):
    out, report = suite
    md = (out / "perf.md").read_text()
    assert md == perf.to_markdown(report)
    table = perf.summary_table(report).splitlines()
    assert table[0].startswith("| section | figure | value |")
    assert len(table) == 2 + len(perf.figures(report))
    assert all(line.count("|") == 8 for line in table)
    for name in ("render", "shards", "loader", "training"):
        assert f"## {name}" in md


def test_readme_regeneration_replaces_only_the_block(suite, tmp_path):
    out, report = suite
    readme = tmp_path / "README.md"
    before = "# Title\n\n## Performance\n\nProse before.\n\n"
    after = "\nProse after.\n\n## Development\n"
    begin, end = "<!-- perf:begin -->", "<!-- perf:end -->"
    readme.write_text(f"{before}{begin}\nold table\n{end}{after}")
    assert ess(["bench-perf", "--no-run", "--out", str(out), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(before + begin + "\n") and text.endswith(end + after)
    assert "old table" not in text and perf.summary_table(report) in text
    once = text
    perf.update_readme(readme, report)  # idempotent
    assert readme.read_text() == once


def test_readme_without_markers_is_refused(suite, tmp_path):
    _, report = suite
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="perf:begin"):
        perf.update_readme(readme, report)
    assert readme.read_text() == "# no markers\n"


def test_bad_input():
    with pytest.raises(ValueError, match="unknown section"):
        perf.run_suite(quick=True, out="unused", only=["nope"], allow_dirty=True)
    with pytest.raises(ValueError, match="multiple of 8"):
        perf.SuiteConfig(train_cpu_batch=12)
    with pytest.raises(SystemExit):
        ess(["bench-perf", "--only", "nope"])


def test_bench_perf_table_writes_one_benchmarks_report(tmp_path, capsys, monkeypatch):
    """``ess bench-perf --table pairs``: the pair benchmark's own table, JSON + Markdown, printed, saying when and
    on which code it was measured; a tree with uncommitted changes is refused without --allow-dirty."""
    import json

    import envsim.version

    args = ["bench-perf", "--table", "pairs", "--sizes", "300", "600", "--views-per-scene", "300", "--brute-max", "600",
            "--out", str(tmp_path), "--allow-dirty"]
    assert ess(args) == 0
    report = json.loads((tmp_path / "pairs.json").read_text())
    markdown = (tmp_path / "pairs.md").read_text()
    assert markdown in capsys.readouterr().out
    assert [row["views"] for row in report["results"]] == [300, 600] and all(r["brute_matches"] for r in report["results"])
    assert f"Measured {report['started']} on code {report['machine']['code_version']}" in markdown
    assert "by `ess bench-perf --table pairs`" in markdown
    assert ess(["bench-perf", "--table", "pairs", "--sizes", "1", "--out", str(tmp_path), "--allow-dirty"]) == 2
    monkeypatch.setattr(envsim.version, "code_version", lambda: "0.1.0+gabc.dirty")
    assert ess(args[:-1]) == 2 and "uncommitted changes" in capsys.readouterr().err


# ----------------------------------------------------------------------------- every check can fail


def test_a_dropped_pair_fails_the_brute_force_check(monkeypatch):
    import pairing.index
    from benchmarks.perf import pairs

    ok = pairs.measure_pairs(sizes=[400], views_per_scene=400, brute_max=400, seed=0)[0]
    assert ok["brute_matches"] is True
    real = pairing.index.radius_pairs
    monkeypatch.setattr(pairing.index, "radius_pairs", lambda *a, **k: real(*a, **k)[1:])
    row = pairs.measure_pairs(sizes=[400], views_per_scene=400, brute_max=400, seed=0)[0]
    assert row["brute_matches"] is False and "pairs vs" in row["brute_check"]
    assert perf.failed_checks({"results": [row]}) == [f"results[0].brute_matches ({row['brute_check']})"]


def test_a_wrong_covisibility_fails_the_independent_reference(monkeypatch):
    import pairing.covisibility
    from benchmarks.perf import pairs

    assert pairs.measure_covisibility(views=32, size=24, stride=4, seed=0)["reference_matches"] is True
    real = pairing.covisibility.covisibility_pairs
    monkeypatch.setattr(pairing.covisibility, "covisibility_pairs", lambda *a, **k: real(*a, **k) * 0.99)
    assert pairs.measure_covisibility(views=32, size=24, stride=4, seed=0)["reference_matches"] is False


def test_a_flipped_byte_fails_the_shard_check(monkeypatch):
    from benchmarks.perf import shards

    real = shards.read_ours

    def flipped(path):
        out = real(path)
        out["rgb"] = out["rgb"].copy()
        out["rgb"].reshape(-1)[7] ^= 1
        return out

    monkeypatch.setattr(shards, "read_ours", flipped)
    report = shards.measure(samples=8, size=16, repeats=1, views=4, compressions=["none"])
    row = report["results"][0]
    assert row["bytes_match"] is False and "'rgb' differs" in row["bytes_check"]


def test_a_changed_image_fails_the_loader_check(monkeypatch):
    from benchmarks.perf import loader

    real = loader._reference_epoch

    def changed(*args):
        batches = real(*args)
        a, b = batches[0]
        a = a.copy()
        a.reshape(-1)[0] ^= 1
        return [(a, b), *batches[1:]]

    monkeypatch.setattr(loader, "_reference_epoch", changed)
    report = loader.measure(houses=1, views=16, size=16, batch=4, repeats=1, workers=[0])
    assert report["images_match"] is False and "differ" in report["images_check"]


def test_a_perturbed_logit_fails_the_parity_check():
    from benchmarks.perf import training

    hyper = dict(dim=16, mlp_hidden=32, m=0.99, T=0.2, seed=0, batch=4, size=16, k=32)
    assert training.check_parity("resnet18", **hyper)["logits_match"] is True
    bad = training.check_parity("resnet18", perturb=0.01, **hyper)
    assert bad["logits_match"] is False and perf.failed_checks({"parity": bad})


def test_a_false_check_fails_its_section_and_the_suite(monkeypatch, tmp_path):
    monkeypatch.setitem(perf.RUNNERS, "shards", lambda cfg, scratch: {"report": {"results": [{"bytes_match": False,
                        "bytes_check": "a flipped byte"}]}, "figures": []})
    section = perf._run_section("shards", TINY, tmp_path)
    assert section["status"] == "error" and section["error"] == (
        "check failed: report.results[0].bytes_match (a flipped byte)")
    assert perf.failures({"sections": {"shards": section}}) == ["shards: " + section["error"]]


def test_one_run_per_table_and_no_dirty_figures(suite, tmp_path, monkeypatch):
    """A dirty tree is refused unless allowed (then flagged); a merged section carries its own run's date and code."""
    import envsim.version

    monkeypatch.setattr(envsim.version, "code_version", lambda: "0.1.0+gabc.dirty")
    with pytest.raises(ValueError, match="uncommitted changes"):
        perf.run_suite(quick=True, out=tmp_path, only=["shards"], config=TINY)
    monkeypatch.undo()
    out, report = suite
    old = json.loads((out / "perf.json").read_text())
    old["started"], old["machine"]["code_version"] = "2026-01-01T00:00:00+00:00", "0.1.0+gold"
    (tmp_path / "perf.json").write_text(json.dumps(old))
    monkeypatch.setitem(perf.RUNNERS, "shards", lambda cfg, scratch: {"report": {}, "figures": []})
    merged = perf.run_suite(quick=True, out=tmp_path, only=["shards"], config=TINY, merge=True, allow_dirty=True)
    pairs = merged["sections"]["pairs"]
    assert pairs["merged_from_run"] == "2026-01-01T00:00:00+00:00" and pairs["merged_code_version"] == "0.1.0+gold"
    assert "merged_from_run" not in merged["sections"]["shards"]
    text = perf.readme_block(merged)
    assert "| pairs (merged: run of 2026-01-01T00:00:00+00:00) |" in text and "code 0.1.0+gold" in text


def test_pairs_and_loader_sections_build_the_memory_dataset_once(tmp_path, monkeypatch):
    """The loader's memory rows open the synthetic dataset and pairs the pairs section built in the same run."""
    from benchmarks.perf import pairs as pair_bench

    built = []
    write = pair_bench.write_dataset
    monkeypatch.setattr(pair_bench, "write_dataset", lambda folder, *a, **k: built.append(folder) or write(folder, *a, **k))
    report = perf.run_suite(quick=True, out=tmp_path, only=["pairs", "loader"], config=TINY, allow_dirty=True)
    assert perf.failures(report) == []
    views = {r["views"] for r in report["sections"]["loader"]["report"]["memory"]}
    assert views and views == {r["views"] for r in report["sections"]["pairs"]["report"]["memory"]}
    assert len(built) == len(views)  # once per size, by the pairs section
    assert not any(Path(f).exists() for f in built)  # the run's scratch folder is gone
