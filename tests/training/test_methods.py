"""BYOL, SARL and the auxiliary heads end to end on a small procedural dataset: runs finish and resume exactly,
switched-off parts change nothing bit for bit, artifacts load without flags, the command line knows the flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig
from pairing.build import PairConfig, build_pairs
from pairing.pretext import DepthOrderConfig
from training.encoder import load_encoder, random_encoder
from training.trainer import TrainConfig, TrainError, train

TINY = dict(arch="resnet18-cifar-quarter", batch_size=16, dim=16, mlp_hidden=64, bn_splits=2, workers=0, lr=0.05,
            log_every=1)
HEADS = ("sp", "pose", "depth-order")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """3 procedural houses, 60 views each at 32 x 32; depth-order regions of 8 px so that views have labels."""
    out = tmp_path_factory.mktemp("methods") / "data"
    cfg = DatasetConfig(seed=0, render=RenderConfig(width=32, height=32),
                        trajectory=TrajectoryConfig(views=60, views_per_trajectory=10))
    render_dataset(resolve_sources(["procedural:3"]), config=cfg, out=out)
    build_pairs(out, config=PairConfig(compute_covisibility=False, depth_order=DepthOrderConfig(region_size=8)))
    return out


def _ckpt(run):
    return torch.load(run / "checkpoint.pt", weights_only=False)


def _same(a: dict, b: dict, keys=None) -> bool:
    keys = a.keys() if keys is None else keys
    return all(torch.equal(a[k], b[k]) for k in keys)


def _losses(run):
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("settings", [
    dict(method="byol"),
    dict(method="sarl"),
    dict(method="byol", partners="spatial", aux=("pose",)),
    dict(method="ess-mw", aux=HEADS, aux_weight=(1.0, 0.5, 2.0)),
], ids=["byol", "sarl", "byol-spatial-pose", "ess-mw-all-heads"])
def test_runs_finish_and_resume_exactly_after_an_interruption(data, tmp_path, settings):
    config = TrainConfig(epochs=2, checkpoint_every=2, **TINY, **settings)
    summary = train(data, config=config, out=tmp_path / "full")
    assert summary["steps"] > 6 and np.isfinite(summary["final_loss"])

    def interrupt(step, record):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, config=config, out=tmp_path / "part", progress=interrupt)
    assert _ckpt(tmp_path / "part")["step"] == 5
    assert train(data, config=config, out=tmp_path / "part", resume=True)["status"] == "continued"
    a, b = _ckpt(tmp_path / "full"), _ckpt(tmp_path / "part")
    assert a["step"] == b["step"] == summary["steps"]
    assert a["model"].keys() == b["model"].keys() and _same(a["model"], b["model"])
    if "aux" in settings:
        assert _same(a["heads"], b["heads"]) and b["heads_args"]["heads"] == list(settings["aux"])
    assert _losses(tmp_path / "full") == [{**r, "images_per_s": x["images_per_s"]}
                                          for r, x in zip(_losses(tmp_path / "part"), _losses(tmp_path / "full"))]
    model, record = load_encoder(tmp_path / "part")  # no flags: the backbone by its arch
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 128) and record["config"]["method"] == settings["method"]


def test_sarl_with_zero_lambdas_trains_to_the_byol_weights(data, tmp_path):
    train(data, config=TrainConfig(method="byol", epochs=1, **TINY), out=tmp_path / "byol")
    train(data, config=TrainConfig(method="sarl", epochs=1, lambda_sal=0, lambda_ppda=0, lambda_ram=0, **TINY),
          out=tmp_path / "sarl")
    byol, sarl = _ckpt(tmp_path / "byol")["model"], _ckpt(tmp_path / "sarl")["model"]
    assert set(sarl) - set(byol) == {"prototypes"}
    assert _same(byol, sarl)
    log = _losses(tmp_path / "sarl")
    assert all(r["sal"] > 0 and r["ppda"] > 0 and r["ram"] > 0 for r in log)  # computed, weighted by 0
    assert [r["loss"] for r in log] == [r["loss"] for r in _losses(tmp_path / "byol")]
    # and with its lambdas on, SARL trains other weights
    train(data, config=TrainConfig(method="sarl", epochs=1, **TINY), out=tmp_path / "sarl-on")
    assert not _same(byol, _ckpt(tmp_path / "sarl-on")["model"], keys=byol.keys())


@pytest.mark.parametrize("method", ["moco", "byol"])
def test_zero_aux_weights_train_to_the_weights_without_heads(data, tmp_path, method):
    train(data, config=TrainConfig(method=method, epochs=1, **TINY), out=tmp_path / "plain")
    train(data, config=TrainConfig(method=method, epochs=1, aux=HEADS, aux_weight=(0.0,), **TINY), out=tmp_path / "heads")
    plain, heads = _ckpt(tmp_path / "plain"), _ckpt(tmp_path / "heads")
    assert plain["model"].keys() == heads["model"].keys() and _same(plain["model"], heads["model"])
    log = _losses(tmp_path / "heads")
    assert [r["loss"] for r in log] == [r["loss"] for r in _losses(tmp_path / "plain")]
    assert all(r["sp"] > 0 and r["pose"] > 0 for r in log) and any(r["depth-order"] > 0 for r in log)
    train(data, config=TrainConfig(method=method, epochs=1, aux=HEADS, **TINY), out=tmp_path / "on")
    assert not _same(plain["model"], _ckpt(tmp_path / "on")["model"])


def test_artifacts_record_the_method_heads_and_our_lambdas(data, tmp_path):
    run = tmp_path / "run"
    train(data, config=TrainConfig(method="sarl", epochs=1, aux=("sp", "depth-order"), aux_weight=(0.5, 2.0), **TINY),
          out=run)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["config"]["method"] == "sarl" and cfg["config"]["lambda_sal"] == 100.0
    assert cfg["config"]["aux"] == ["sp", "depth-order"] and cfg["config"]["aux_weight"] == [0.5, 2.0]
    assert cfg["model_args"]["sarl"]["lambda_source"].startswith("ours")
    assert cfg["model_args"]["byol"]["tau"] == 0.996 and cfg["model_args"]["byol"]["dim"] == 16
    assert cfg["heads_args"] == {"heads": ["sp", "depth-order"], "weights": [0.5, 2.0], "hidden": 256}
    record = _losses(run)[-1]
    assert {"sarl", "byol", "sal", "ppda", "ram", "sp", "depth-order"} <= set(record)
    assert record["loss"] == pytest.approx(record["sarl"] + 0.5 * record["sp"] + 2 * record["depth-order"], rel=1e-5)
    model, _ = load_encoder(run)
    floor = random_encoder("resnet18-cifar-quarter", seed=0)
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), floor.state_dict().values()))
    with pytest.raises(TrainError, match="aux: .*'sp', 'depth-order'.* in the run"):
        train(data, config=TrainConfig(method="sarl", epochs=1, aux=("sp",), **TINY), out=run, resume=True)


def test_a_run_made_before_these_settings_existed_still_resumes(data, tmp_path):
    """A checkpoint whose config predates byol_tau, partners, the lambdas and the heads resumes: the missing
    settings count as their defaults."""
    run = tmp_path / "old"
    train(data, config=TrainConfig(method="moco", epochs=1, schedule_epochs=2, **TINY), out=run)
    ckpt = _ckpt(run)
    for key in ("byol_tau", "partners", "lambda_sal", "lambda_ppda", "lambda_ram", "aux", "aux_weight"):
        del ckpt["config"][key]
    torch.save(ckpt, run / "checkpoint.pt")
    summary = train(data, config=TrainConfig(method="moco", epochs=2, schedule_epochs=2, **TINY), out=run, resume=True)
    assert summary["status"] == "continued"


@pytest.mark.parametrize(("settings", "message"), [
    (dict(method="moco", byol_tau=0.99), "--byol-tau applies to --method byol and sarl"),
    (dict(method="sarl", partners="spatial"), "--partners spatial applies to --method byol"),
    (dict(method="ess-mb", partners="spatial"), "by design"),
    (dict(method="byol", lambda_ram=1.0), "apply to --method sarl"),
    (dict(method="sarl", lambda_sal=-1.0), "--lambda-sal must be"),
    (dict(method="moco", aux_weight=(1.0,)), "--aux-weight needs --aux"),
    (dict(method="moco", aux=("sp", "pose"), aux_weight=(1.0, 2.0, 3.0)), "one per --aux head"),
    (dict(method="simclr"), "--method must be one of"),
])
def test_settings_that_do_not_apply_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_cli_help_lists_the_new_flags_and_trains_with_them(data, tmp_path, capsys):
    from ess.main import main
    from ess.train import AUX_HEADS, METHODS, SARL_LAMBDAS
    from training.config import TrainMethod
    from training.heads import AuxHead
    from training.sarl import SARLConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--byol-tau", "--partners", "--lambda-sal", "--lambda-ppda", "--lambda-ram", "--aux", "--aux-weight",
                 "byol", "sarl", "depth-order"):
        assert flag in text, flag
    assert METHODS == tuple(m.value for m in TrainMethod) and AUX_HEADS == tuple(h.value for h in AuxHead)
    assert SARL_LAMBDAS == {k: getattr(SARLConfig(), f"lambda_{k}") for k in ("sal", "ppda", "ram")}
    args = ["train", str(data), "--out", str(tmp_path / "r"), "--method", "sarl", "--epochs", "1", "--batch-size", "16",
            "--dim", "16", "--mlp-hidden", "64", "--bn-splits", "2", "--workers", "0", "--no-progress",
            "--arch", "resnet18-cifar-quarter", "--lambda-ppda", "0.5", "--aux", "sp", "pose", "--aux-weight", "0.25"]
    assert main(args) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert cfg["lambda_ppda"] == 0.5 and cfg["aux"] == ["sp", "pose"] and cfg["aux_weight"] == [0.25, 0.25]
    moco = ["train", str(data), "--out", str(tmp_path / "s"), "--method", "moco", "--epochs", "1", "--workers", "0",
            "--no-progress", "--byol-tau", "0.99"]
    assert main(moco) == 2
    assert "--byol-tau applies" in capsys.readouterr().err


def test_more_epochs_extend_a_sarl_run_to_the_weights_of_a_longer_run(data, tmp_path):
    """BYOL's target decay follows the learning-rate schedule's horizon, so a run trained part of its
    --schedule-epochs and extended with --resume reaches the weights of the run trained that long at once."""
    train(data, config=TrainConfig(method="sarl", epochs=2, **TINY), out=tmp_path / "two")
    run = tmp_path / "part"
    train(data, config=TrainConfig(method="sarl", epochs=1, schedule_epochs=2, **TINY), out=run)
    summary = train(data, config=TrainConfig(method="sarl", epochs=2, schedule_epochs=2, **TINY), out=run, resume=True)
    assert summary["status"] == "continued"
    assert _same(_ckpt(tmp_path / "two")["model"], _ckpt(run)["model"])
