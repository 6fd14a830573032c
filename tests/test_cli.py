"""The ``ess`` command as a user meets it: exit codes, one-line errors, the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import trimesh
from PIL import Image

from ess.main import main

FAST = ["--views", "6", "--size", "16x12", "--no-progress", "--views-per-trajectory", "3"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_render_inspect_preview(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["render", "procedural:2", "--out", str(out), *FAST, "--shard-size", "5"]) == 0
    assert "12 views of 2 scene(s) in 3 shard(s)" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "12 views in 3 shard(s), complete" in text and "views per room" in text and "house-0001" in text
    assert "resolution 16x12" in text and "K: fx=8.000" in text and "shading auto" in text
    assert main(["inspect", str(out / "shard-00000.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 5
    assert main(["inspect", str(out / "scenes" / "house-0000.glb")]) == 0
    assert "triangles" in capsys.readouterr().out
    assert main(["preview", str(out)]) == 0
    files = capsys.readouterr().out.split()
    assert any(f.endswith("contact_sheet.png") for f in files)
    assert sum("map-house" in f for f in files) == 2
    for f in files:
        with Image.open(f) as im:
            assert im.size[0] > 16 and im.size[1] > 16


def test_bad_input_gives_one_line_and_exit_2(tmp_path, capsys):
    assert main(["render", str(tmp_path / "missing.glb"), "--out", str(tmp_path / "o")]) == 2
    assert "scene not found" in _err_line(capsys)
    (tmp_path / "bad.glb").write_bytes(b"not a mesh at all")
    assert main(["render", str(tmp_path / "bad.glb"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "bad.glb" in _err_line(capsys)
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    assert main(["render", str(tmp_path / "nan.obj"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "non-finite" in _err_line(capsys)
    trimesh.creation.box((0.05, 2.0, 3.0)).export(tmp_path / "flat.ply")  # a lone wall: nowhere to stand
    assert main(["render", str(tmp_path / "flat.ply"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "navigable" in _err_line(capsys)
    (tmp_path / "poses.json").write_text(json.dumps([{"position": [0, 1, 0], "rotation": [2, 0, 0, 0]}]))
    assert main(["render", "procedural:1", "--poses", str(tmp_path / "poses.json"), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "--views and --poses do not go together" in _err_line(capsys)  # the poses say which views
    assert main(["render", "procedural:1", "--poses", str(tmp_path / "poses.json"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "unit quaternion" in _err_line(capsys)
    assert main(["render", "procedural:1", "--hfov", "200", "--out", str(tmp_path / "o")]) == 2
    assert "hfov" in _err_line(capsys)
    assert not (tmp_path / "o").exists()  # nothing left behind by any failure
    assert main(["inspect", str(tmp_path / "nothing")]) == 2
    assert "not found" in _err_line(capsys)
    assert main(["preview", str(tmp_path)]) == 2
    assert "not a dataset folder" in _err_line(capsys)


def test_output_folder_with_a_different_dataset(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["render", "procedural:1", "--out", out, *FAST]) == 0
    capsys.readouterr()
    assert main(["render", "procedural:1", "--out", out, *FAST, "--seed", "5"]) == 2
    assert "different dataset" in _err_line(capsys)
    assert main(["render", "procedural:1", "--out", out, *FAST]) == 0  # same job: nothing to do


def test_bad_size_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", "procedural:1", "--out", "x", "--size", "128"])
    assert exc.value.code == 2
    assert "WIDTH x HEIGHT" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["render", "inspect", "preview"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: ess " + command in capsys.readouterr().out


def test_console_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ess", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ess 0.")


def test_recipe_options_are_defaults_and_the_command_line_wins(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'scenes = ["procedural:1"]\n[render]\nviews = 4\nsize = "20x10"\nviews-per-trajectory = 2\n'
        '[splits]\ntrain = ["house-0000"]\n'
    )
    out = tmp_path / "d"
    assert main(["render", str(recipe), "--out", str(out), "--size", "12x8", "--no-progress"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["total_samples"] == 4 and (m["width"], m["height"]) == (12, 8)
    assert m["config"]["trajectory"]["views_per_trajectory"] == 2
    assert m["splits"] == {"train": ["house-0000"]}
    capsys.readouterr()
    recipe.write_text('scenes = ["procedural:1"]\n[render]\nviewz = 4\n')
    assert main(["render", str(recipe), "--out", str(tmp_path / "e")]) == 2
    assert "unknown render option 'viewz'" in _err_line(capsys)
    assert main(["render", str(tmp_path / "none.toml"), "--out", str(tmp_path / "e")]) == 2
    assert "recipe not found" in _err_line(capsys)


def test_shipped_recipe_is_valid():
    from pathlib import Path

    from envsim.job.recipe import load_recipe

    r = load_recipe(Path(__file__).parent.parent / "data_manifests" / "procedural.toml")
    assert r.scenes == ("procedural:10",) and r.options["size"] == (128, 128)
    assert set(r.splits["train"]).isdisjoint(r.splits["test"])
