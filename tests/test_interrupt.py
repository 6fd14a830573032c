"""SIGKILL at any moment, then the same command again: the job finishes and its files are byte-identical to
an uninterrupted run's. For ``ess render`` (in this process and with worker processes), ``ess pair`` and
``ess train --resume``.

The shards use the default LZF compression: the toolkit compresses LZF chunks itself (:mod:`envsim.store.lzf`),
so their bytes depend on the data alone, not on what the process compressed before.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
RENDER = ["render", "procedural:2", "--views", "60", "--shard-size", "20", "--size", "32x32", "--no-progress"]

pytestmark = pytest.mark.slow


def _ess(*args: str) -> list[str]:
    return [sys.executable, "-m", "ess", *args]  # the `ess` console command


def _run(*args: str) -> None:
    done = subprocess.run(_ess(*args), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _kill_when(args: list[str], ready, *, timeout: float = 300.0) -> list[int]:
    """Start ``ess ARGS``, SIGKILL it as soon as ``ready()`` holds; return the pids of its children then."""
    proc = subprocess.Popen(_ess(*args), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"finished before the kill point: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the kill point never came")
            time.sleep(0.002)
        kids = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    return kids


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    _run(*RENDER, "--out", str(out))
    return out


def _partial(out: Path) -> bool:
    return any(out.glob("shard-*.h5.partial"))


KILL_POINTS = {
    "at start": lambda out: (out / ".ess-render.lock").exists(),  # before the houses and the manifest
    "before the first shard": lambda out: (out / "manifest.json").exists(),
    "mid shard": lambda out: any(out.glob("shard-00001.h5.partial")),
    "after a shard": lambda out: (out / "shard-00002.h5").exists(),
}


@pytest.mark.parametrize("when", list(KILL_POINTS))
def test_render_killed_then_rerun_gives_the_same_bytes(reference, tmp_path, when):
    out = tmp_path / "data"
    _kill_when([*RENDER, "--out", str(out), "--workers", "1"], lambda: KILL_POINTS[when](out))
    assert not (out / "manifest.json").exists() or b'"complete": true' not in (out / "manifest.json").read_bytes()
    _run(*RENDER, "--out", str(out))  # the stale lock does not block the rerun
    assert _files(out) == _files(reference)  # manifest, shards, scenes, nav; no .partial, no lock file


def test_render_with_worker_processes_killed_mid_shard(reference, tmp_path):
    out = tmp_path / "data"
    kids = _kill_when([*RENDER, "--out", str(out), "--workers", "2"], lambda: _partial(out))
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kids and not any(_alive(k) for k in kids)  # the workers died with their parent
    _run(*RENDER, "--out", str(out), "--workers", "2")
    assert _files(out) == _files(reference)


def test_concurrent_render_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "data"
    big = ["render", "procedural:1", "--views", "3000", "--shard-size", "100", "--size", "64x64", "--no-progress"]
    proc = subprocess.Popen(_ess(*big, "--out", str(out), "--workers", "1"), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (out / "manifest.json").exists():
            assert proc.poll() is None
            time.sleep(0.01)
        second = subprocess.run(_ess(*big, "--out", str(out)), cwd=ROOT, env=ENV, capture_output=True, text=True,
                                timeout=300)
        assert proc.poll() is None, "the first run finished too soon for this test"
    finally:
        proc.kill()
        proc.wait()
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"ess render: error: another ess render (pid {proc.pid} on {socket.gethostname()}) is writing into {out}; "
        "wait for it or choose another --out"
    ]


# ------------------------------------------------------------------------------------------- ess pair


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_pair_killed_then_rerun_gives_the_same_bytes(reference, tmp_path, fraction):
    import shutil

    full, part = tmp_path / "full", tmp_path / "part"
    shutil.copytree(reference, full)
    shutil.copytree(reference, part)
    t0 = time.monotonic()
    _run("pair", str(full), "--no-progress")
    took = time.monotonic() - t0
    start = time.monotonic()
    _kill_when(["pair", str(part), "--no-progress"], lambda: time.monotonic() - start > fraction * took
               or any(part.glob("pairs.h5*")))
    _run("pair", str(part), "--no-progress")
    assert _files(part) == _files(full)  # pairs.h5 identical, no pairs.h5.partial left


# ------------------------------------------------------------------------------------------ ess train


def test_train_killed_after_a_checkpoint_resumes_to_the_same_weights(tmp_path):
    pytest.importorskip("torch")
    import torch

    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.nav.trajectory import TrajectoryConfig
    from envsim.render.renderer import RenderConfig
    from pairing.build import PairConfig, build_pairs
    from training.encoder import load_encoder, state_digest

    data = tmp_path / "data"
    render_dataset(resolve_sources(["procedural:3"]), out=data, config=DatasetConfig(
        render=RenderConfig(width=32, height=32), trajectory=TrajectoryConfig(views=60, views_per_trajectory=10)))
    build_pairs(data, config=PairConfig(compute_covisibility=False))
    train = ["train", str(data), "--method", "ess-mw", "--epochs", "1", "--batch-size", "16", "--image-size", "16",
             "--dim", "16", "--mlp-hidden", "64", "--bn-splits", "2", "--workers", "0", "--device", "cpu",
             "--checkpoint-every", "2", "--no-progress"]
    _run(*train, "--out", str(tmp_path / "full"))
    part = tmp_path / "part"
    _kill_when([*train, "--out", str(part)], lambda: (part / "checkpoint.pt").exists())
    killed_at = torch.load(part / "checkpoint.pt", weights_only=False)["step"]
    _run(*train, "--out", str(part), "--resume")
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    b = torch.load(part / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] > killed_at
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert state_digest(load_encoder(tmp_path / "full")[0]) == state_digest(load_encoder(part)[0])
