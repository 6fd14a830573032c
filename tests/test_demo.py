"""``ess demo`` end to end at a toy size: every stage runs and the comparison table is written."""

import json

import pytest

from envsim.cli import main


@pytest.mark.slow
def test_demo_toy_size(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--houses", "2", "--views", "64", "--epochs", "1", "--batch-size", "16", "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    comparison = json.loads((out / "comparison" / "comparison.json").read_text())
    methods = [row["name"] for row in comparison["rows"]]
    assert methods[:3] == ["moco", "ess-mb", "ess-mw"]
    assert (out / "comparison" / "comparison.png").is_file()
    # Rerunning finds every stage done and only redraws the comparison.
    capsys.readouterr()
    assert main(argv) == 0
    assert "== train" not in capsys.readouterr().err
