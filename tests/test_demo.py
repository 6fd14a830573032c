"""``ess demo`` end to end at a toy size: every stage runs and the comparison table is written."""

import json

import pytest

from benchmarks.evaluation.demo import QUICK, DemoConfig, plan_steps
from ess.main import main


@pytest.mark.slow
def test_demo_toy_size(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--houses", "2", "--views", "64", "--epochs", "1", "--batch-size", "16", "--no-progress",
            "--device", "cpu", "--results", str(tmp_path / "results")]
    assert main(argv) == 0
    comparison = json.loads((out / "comparison" / "comparison.json").read_text())
    methods = [row["name"] for row in comparison["rows"]]
    assert methods[:3] == ["moco", "ess-mb", "ess-mw"]
    assert (out / "comparison" / "comparison.png").is_file()
    record = json.loads((out / "demo.json").read_text())
    assert record["command"] == ["ess", *argv] and record["config"]["houses"] == 2 and record["config"]["seeds"] == 3
    trains = [s for s in record["steps"] if s["name"].startswith("train")]
    assert len(trains) == 9 and all(s["seconds"] > 0 for s in trains)
    assert "ess-mb - moco" in comparison["differences"]
    # Rerunning finds every stage done and only redraws the comparison; earlier timings are kept.
    capsys.readouterr()
    assert main(argv) == 0
    assert "== train" not in capsys.readouterr().err
    again = json.loads((out / "demo.json").read_text())
    assert [s["seconds"] for s in again["steps"] if s["name"].startswith("train")] == [s["seconds"] for s in trains]
    # The README section comes from the files alone.
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ess-cpu:begin -->\nold\n<!-- ess-cpu:end -->\nrest\n")
    assert main(["bench", "--results", str(out), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- ess-cpu:begin -->\n`ess demo --out") and text.endswith("<!-- ess-cpu:end -->\nrest\n")
    assert "| ess-mb - moco | 3 |" in text and "old" not in text
    # --results copied what the README section is generated from, and the same section comes from there
    results = tmp_path / "results"
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted(f"{m}-seed{s}.json" for m in
                                                                          ("moco", "ess-mb", "ess-mw") for s in range(3))
    assert json.loads((results / "comparison.json").read_text()) == comparison
    assert main(["bench", "--results", str(results)]) == 0


def test_plan_trains_and_benches_the_listed_methods(tmp_path):
    cfg = DemoConfig(houses=2, seeds=2, methods=("moco", "byol", "sarl"))
    steps = plan_steps(cfg, out=tmp_path)
    trains = [s for s in steps if s.argv[0] == "train"]
    assert [s.argv[s.argv.index("--method") + 1] for s in trains] == ["moco", "moco", "byol", "byol", "sarl", "sarl"]
    benches = [s for s in steps if s.argv[0] == "bench" and "--compare" not in s.argv]
    assert [s.name for s in benches] == [f"bench {m}-seed{k}" for m in ("moco", "byol", "sarl") for k in range(2)]
    assert all(s.argv[s.argv.index("--pretext-views") + 1] == str(cfg.pretext_views) for s in benches)
    compare = steps[-1].argv
    assert compare[:2] == ("bench", "--compare") and compare[2:8] == tuple(
        str(tmp_path / "runs" / f"{m}-seed{k}") for m in ("moco", "byol", "sarl") for k in range(2))
    assert QUICK.methods == ("moco", "ess-mb", "ess-mw")
    for bad in ((), ("moco", "moco"), ("a/b",)):
        with pytest.raises(ValueError, match="method"):
            DemoConfig(methods=bad)


def test_render_options_reach_ess_render(tmp_path):
    steps = plan_steps(DemoConfig(houses=2), out=tmp_path, render=("--backend", "mitsuba", "--batch", "1024"))
    render = steps[0].argv
    assert render[0] == "render" and render[render.index("--backend") + 1] == "mitsuba"
    assert render[render.index("--batch") + 1] == "1024"
    assert "--backend" not in plan_steps(DemoConfig(houses=2), out=tmp_path)[0].argv


def test_demo_refuses_a_method_through_ess_train(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--houses", "2", "--methods", "moco", "no-such-method", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "ess train" in err and "no-such-method" in err
    assert not (out / "data").exists()  # refused before anything was rendered


@pytest.mark.slow
def test_demo_runs_only_the_listed_methods(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--houses", "2", "--views", "64", "--epochs", "1", "--batch-size", "16",
            "--seeds", "1", "--methods", "moco", "ess-mb", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["ess-mb-seed0", "moco-seed0"]
    comparison = json.loads((out / "comparison" / "comparison.json").read_text())
    assert [row["name"] for row in comparison["rows"]][:2] == ["moco", "ess-mb"]
    assert set(comparison["differences"]) == {"ess-mb - moco", "moco - random-init", "ess-mb - random-init"}
    record = json.loads((out / "demo.json").read_text())
    assert record["config"]["methods"] == ["moco", "ess-mb"]
    assert [s["name"] for s in record["steps"] if s["name"].startswith("train")] == ["train moco seed 0", "train ess-mb seed 0"]
    bench = json.loads((out / "runs" / "moco-seed0" / "bench" / "bench.json").read_text())
    assert bench["pretext"]["skipped"] is None and bench["results"]["trained"]["familiar"]["sp_r2"] is not None
