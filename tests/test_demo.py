"""``ess demo`` end to end at a toy size: every stage runs and the comparison table is written."""

import json

import pytest

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
