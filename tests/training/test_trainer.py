"""Training runs end to end on small procedural datasets: resume exactness, artifacts, errors, learning."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig
from pairing.build import PairConfig, build_pairs
from training.encoder import load_encoder
from training.trainer import TrainConfig, TrainError, train

TINY = dict(arch="resnet18", batch_size=16, dim=16, mlp_hidden=64, bn_splits=2, workers=0, moco_m=0.99, lr=0.05, log_every=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "data"
    cfg = DatasetConfig(
        seed=0, render=RenderConfig(width=32, height=32),
        trajectory=TrajectoryConfig(views=60, views_per_trajectory=10),
    )
    render_dataset(resolve_sources(["procedural:3"]), config=cfg, out=out)
    build_pairs(out, config=PairConfig(compute_covisibility=False))
    return out


def _state(run):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    return ckpt["model"], ckpt["step"]


@pytest.mark.parametrize("method", ["moco", "ess-mw"])
def test_resume_after_an_interruption_gives_the_same_weights(data, tmp_path, method):
    config = TrainConfig(method=method, epochs=2, checkpoint_every=2, **TINY)
    train(data, config=config, out=tmp_path / "full")

    def interrupt(step, record):
        if step == 5:  # Ctrl-C in the middle of the first epoch, after the checkpoint at step 4
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, config=config, out=tmp_path / "part", progress=interrupt)
    assert _state(tmp_path / "part")[1] == 5  # the interrupted step's state was saved
    train(data, config=config, out=tmp_path / "part", resume=True)
    a, step_a = _state(tmp_path / "full")
    b, step_b = _state(tmp_path / "part")
    assert step_a == step_b > 5
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_full = [json.loads(x)["loss"] for x in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    log_part = [json.loads(x)["loss"] for x in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert log_full == log_part


def test_run_artifacts_and_errors(data, tmp_path):
    run = tmp_path / "run"
    summary = train(data, config=TrainConfig(method="ess-mb", epochs=1, **TINY), out=run)
    assert summary["steps"] > 0 and np.isfinite(summary["final_loss"]) and summary["images_per_s"] > 0
    for name in ("checkpoint.pt", "encoder.pt", "log.jsonl", "loss.png", "config.json"):
        assert (run / name).is_file(), name
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["model_args"]["method"] == "ess-mb" and ckpt["config"]["batch_size"] == 16
    assert ckpt["dataset"]["splits"]["views"]["train"] > 0 and len(ckpt["dataset"]["manifest_sha256"]) == 64
    model, record = load_encoder(run)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 512) and record["seed"] == 0
    with pytest.raises(TrainError, match="--resume"):
        train(data, config=TrainConfig(method="ess-mb", epochs=1, **TINY), out=run)
    with pytest.raises(TrainError, match="other settings .*method: 'ess-mb' in the run, 'moco' now"):
        train(data, config=TrainConfig(method="moco", epochs=1, **TINY), out=run, resume=True)
    with pytest.raises(TrainError, match="ess render"):
        train(tmp_path, config=TrainConfig(epochs=1, **TINY), out=tmp_path / "x")
    unpaired = tmp_path / "unpaired"
    render_dataset(resolve_sources(["procedural:1"]), out=unpaired, config=DatasetConfig(
        render=RenderConfig(width=16, height=16), trajectory=TrajectoryConfig(views=8, views_per_trajectory=4)))
    with pytest.raises(TrainError, match="ess pair"):
        train(unpaired, config=TrainConfig(epochs=1, **TINY), out=tmp_path / "y")


def _weights(run):
    return torch.load(run / "checkpoint.pt", weights_only=False)["model"]


def _same_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def test_resume_of_a_finished_run_changes_nothing(data, tmp_path, capsys):
    from ess.main import main

    run = tmp_path / "done"
    config = TrainConfig(method="ess-mb", epochs=1, **TINY)
    train(data, config=config, out=run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    summary = train(data, config=config, out=run, resume=True)
    assert summary["status"] == "finished" and summary["final_loss"] is None
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    args = ["train", str(data), "--method", "ess-mb", "--out", str(run), "--epochs", "1", "--batch-size", "16",
            "--dim", "16", "--mlp-hidden", "64", "--bn-splits", "2", "--workers", "0", "--moco-m", "0.99",
            "--lr", "0.05", "--no-progress", "--resume"]
    assert main(args) == 0
    assert "finished" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"}
    assert main([*args[:-1], "--lr", "0.1", "--resume"]) == 2
    assert "lr: 0.05 in the run, 0.1 now" in capsys.readouterr().err


def test_more_epochs_extend_a_run_to_the_weights_of_a_longer_run(data, tmp_path):
    """--resume --epochs 2 on a 1-epoch run gives the weights of a 2-epoch run: by continuing when the schedule's
    horizon was set for it (--schedule-epochs 2), by retraining from step 0 when the horizon changes."""
    reference = tmp_path / "two"
    train(data, config=TrainConfig(method="ess-mw", epochs=2, **TINY), out=reference)
    for name, first in (("continued", dict(schedule_epochs=2)), ("restarted", {})):
        run = tmp_path / name
        train(data, config=TrainConfig(method="ess-mw", epochs=1, **TINY, **first), out=run)
        one_epoch_steps = torch.load(run / "checkpoint.pt", weights_only=False)["step"]
        summary = train(data, config=TrainConfig(method="ess-mw", epochs=2, **TINY, **first), out=run, resume=True)
        assert summary["status"] == name and summary["steps"] == 2 * one_epoch_steps
        assert _same_weights(_weights(run), _weights(reference)), name
    with pytest.raises(TrainError, match="more than --epochs 1"):
        train(data, config=TrainConfig(method="ess-mw", epochs=1, **TINY), out=reference, resume=True)


def test_ess_light_positives_take_the_own_key_from_another_light(tmp_path):
    from envsim.render.renderer import LightingConfig
    from training.views import TrainViews

    out = tmp_path / "lv"
    render_dataset(resolve_sources(["procedural:2"]), out=out, config=DatasetConfig(
        light_variants=2, render=RenderConfig(width=16, height=16, lighting=LightingConfig(jitter=True)),
        trajectory=TrajectoryConfig(views=40, views_per_trajectory=10)))
    build_pairs(out, config=PairConfig(compute_covisibility=False))
    views = TrainViews(out, subset=np.ones(160, bool), seed=0, spatial=True, light=True)
    for i in range(0, 160, 7):
        item = views[i]
        assert item["instance_view"] == item["view"] ^ 1  # variants are consecutive: 0-1, 2-3, ...
        assert not torch.equal(item["anchor"], item["instance"])  # same pose, other light
    summary = train(out, config=TrainConfig(method="ess-mb", epochs=1, light_positives=True, **TINY),
                    out=tmp_path / "run")
    assert summary["steps"] > 0 and np.isfinite(summary["final_loss"])


def test_training_on_the_train_split_only(data, tmp_path):
    """Held-out trajectories and unfamiliar scenes never enter training, as anchors or as partners."""
    from envsim.store.reader import DatasetReader
    from envsim.store.splits import view_splits
    from pairing.loader import PartnerSampling, SpatialPairs

    reader = DatasetReader(data)
    splits = view_splits(reader.manifest, reader.meta())
    assert splits.unfamiliar.sum() == 60 and splits.familiar.sum() > 0
    ds = SpatialPairs(data, sampling=PartnerSampling.UNIFORM, subset=splits.train)
    seen = {ds[i][3]["index_a"] for i in range(len(ds))} | {ds[i][3]["index_b"] for i in range(len(ds))}
    assert seen <= set(np.flatnonzero(splits.train).tolist())


def test_cli_train(data, tmp_path, capsys):
    from ess.main import main

    args = ["train", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", "--batch-size", "16", "--dim", "16",
            "--mlp-hidden", "64", "--bn-splits", "2", "--workers", "0", "--no-progress"]
    assert main(args) == 0
    assert "images/s" in capsys.readouterr().out
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(data), "--out", str(tmp_path / "s"), "--batch-size", "10", "--bn-splits", "4"]) == 2


@pytest.mark.slow
def test_torchrun_two_processes(data, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ess",
           "train", str(data), "--out", str(tmp_path / "ddp"), "--epochs", "1", "--batch-size", "16", "--dim", "16",
           "--mlp-hidden", "64", "--bn-splits", "2", "--workers", "0", "--no-progress", "--device", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "ddp" / "encoder.pt").is_file()


def test_random_init_floor_is_the_runs_initial_network():
    """``ess bench`` reads a run against random_encoder(arch, seed=training seed): the backbone the trainer
    starts from with that seed (split BN or not), parameter for parameter."""
    from training.encoder import random_encoder
    from training.moco import MoCo, MoCoConfig

    for arch in ("resnet18", "resnet18-cifar-half"):
        torch.manual_seed(7)  # what train() does before building the model
        model = MoCo(MoCoConfig(arch=arch, bn_splits=2, K=64))
        start = model.encoder_q.backbone.state_dict()
        floor = random_encoder(arch, seed=7).state_dict()
        assert start.keys() == floor.keys()
        assert all(torch.equal(start[k], floor[k]) for k in start), arch


class _Marker:
    """Unpickling this object runs os.system-like code: here it creates a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_shared_files_load_without_running_code(data, tmp_path):
    """A crafted encoder.pt or checkpoint.pt whose unpickling would create a marker file is refused in one line,
    and the marker never appears; real run files (every method's) load as plain data."""
    from training.encoder import UnsafeFileError, load_encoder, load_plain

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"arch": "resnet18", "state_dict": {}, "payload": _Marker(marker)}, evil / "encoder.pt")
    with pytest.raises(UnsafeFileError, match="refusing to load .*encoder.pt.*could run code"):
        load_encoder(evil)
    assert not marker.exists()
    run = tmp_path / "run"
    train(data, config=TrainConfig(method="ess-mb", epochs=1, **TINY), out=run)
    torch.save({"model": {}, "payload": _Marker(marker)}, run / "checkpoint.pt")
    with pytest.raises(TrainError, match="refusing to load"):
        train(data, config=TrainConfig(method="ess-mb", epochs=1, **TINY), out=run, resume=True)
    assert not marker.exists()
    for method in ("moco", "byol", "sarl"):
        out = tmp_path / method
        train(data, config=TrainConfig(method=method, epochs=1, **TINY), out=out)
        assert load_plain(out / "checkpoint.pt")["step"] > 0 and load_encoder(out)[1]["arch"] == "resnet18"
