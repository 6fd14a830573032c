"""Executors and what a render job does with them: same bytes whatever runs the shards, the job lock,
``--repair``, and a Ray run against a local run."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys

import pytest

from envsim.job import LOCK_NAME, DatasetConfig, DatasetError, render_dataset, resolve_sources
from envsim.job.executor import (
    Executor,
    ExecutorConfig,
    ExecutorError,
    gpus_per_task,
    in_process,
    local_workers,
    make_executor_config,
    run_tasks,
)
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig

SMALL = DatasetConfig(
    seed=1,
    shard_size=6,
    render=RenderConfig(width=20, height=16),
    trajectory=TrajectoryConfig(views=9, views_per_trajectory=3),
)


def _square(job: int, key: int) -> int:
    return job * key * key


def _fail_on_three(job: int, key: int) -> int:
    if key == 3:
        raise ValueError("task 3 failed")
    return key


def _files(folder) -> dict[str, str]:
    """SHA-256 of every file under a folder, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------------- executors


def test_config_validation_and_worker_counts():
    assert ExecutorConfig().kind is Executor.LOCAL
    assert make_executor_config(kind="ray", address="auto").kind is Executor.RAY
    with pytest.raises(ValueError, match="--workers"):
        ExecutorConfig(workers=0)
    with pytest.raises(ValueError, match="--executor ray"):
        make_executor_config(kind="local", address="ray://head:10001")
    with pytest.raises(ValueError, match="--executor must be one of local, ray"):
        make_executor_config(kind="dask")
    cores = os.cpu_count() or 1
    assert local_workers(ExecutorConfig(), 1000) == cores
    assert local_workers(ExecutorConfig(), 1) == 1  # never more processes than tasks
    assert local_workers(ExecutorConfig(workers=8), 3) == 3
    assert in_process(None, 5) and in_process(ExecutorConfig(workers=1), 5) and in_process(ExecutorConfig(), 1)
    assert not in_process(ExecutorConfig(kind="ray"), 1)


def test_gpu_request_follows_the_backend():
    assert gpus_per_task(RenderConfig()) == 0  # Open3D, the default, is CPU only
    for backend in ("mitsuba", "auto"):
        try:
            config = RenderConfig(backend=backend)
        except TypeError:  # pragma: no cover - a RenderConfig without backends
            pytest.skip("RenderConfig has no backend field")
        assert gpus_per_task(config) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tasks_gives_every_result_once(workers):
    seen = {}
    run_tasks(_square, 2, range(5), config=ExecutorConfig(workers=workers), on_done=seen.__setitem__)
    assert seen == {k: 2 * k * k for k in range(5)}


def test_a_failing_task_stops_the_run_with_its_error():
    seen = []
    with pytest.raises(ValueError, match="task 3 failed"):
        run_tasks(_fail_on_three, 0, range(6), config=ExecutorConfig(workers=2), on_done=lambda k, r: seen.append(k))
    assert 3 not in seen


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ExecutorError, match=r"pip install 'ess-toolkit\[ray\]'"):
        run_tasks(_square, 1, [1], config=ExecutorConfig(kind="ray"), on_done=lambda k, r: None)


# ------------------------------------------------------------------------------ render jobs on executors


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted in-process run: the bytes every other way of running must give."""
    out = tmp_path_factory.mktemp("ref") / "data"
    render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out)
    return out


def test_worker_processes_write_the_same_bytes(reference, tmp_path):
    seen = []
    manifest = render_dataset(
        resolve_sources(["procedural:2"]), config=SMALL, out=tmp_path / "p", executor=ExecutorConfig(workers=2),
        progress=seen.append,
    )
    assert manifest["complete"] and sum(seen) == 18 and sorted(seen) == [6, 6, 6]  # one update per shard
    assert _files(tmp_path / "p") == _files(reference)  # manifest, shards, scenes and nav grids
    assert not (tmp_path / "p" / LOCK_NAME).exists()


def test_completion_order_does_not_change_the_manifest(reference, tmp_path, monkeypatch):
    import envsim.job.executor

    def backwards(fn, job, keys, *, config, on_done, gpus=0.0):  # shards finish last first
        for key in reversed(list(keys)):
            on_done(key, fn(job, key))

    monkeypatch.setattr(envsim.job.executor, "run_tasks", backwards)
    render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=tmp_path / "r")
    assert _files(tmp_path / "r") == _files(reference)


def test_rerun_of_a_finished_dataset_renders_nothing(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    seen = []
    render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out, progress=seen.append)
    assert seen == [18]  # everything found on disk
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before  # nothing rewritten


# ------------------------------------------------------------------------------------------------- lock


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_holds_the_lock(reference, tmp_path):
    import shutil

    out = tmp_path / "busy"
    shutil.copytree(reference, out)
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:  # another process's lock (flock locks belong to the open file, so this one conflicts too)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"pid": 4242, "host": "node7"}).encode())
        with pytest.raises(DatasetError, match=r"another ess render \(pid 4242 on node7\) is writing into .*busy; "
                                               r"wait for it or choose another --out"):
            render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out)
        assert (out / "manifest.json").is_file()  # the refused run touched nothing
    finally:
        os.close(fd)
    render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out)  # released: runs (nothing to do)
    assert not (out / LOCK_NAME).exists()


def test_a_fresh_folder_locked_by_another_run_is_not_cleaned_up(tmp_path):
    out = tmp_path / "starting"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run that has not written its manifest yet
        with pytest.raises(DatasetError, match="another ess render"):
            render_dataset(resolve_sources(["procedural:1"]), config=SMALL, out=out)
        assert (out / LOCK_NAME).exists()  # its folder was left alone
    finally:
        os.close(fd)


def test_leftovers_of_a_run_killed_before_its_manifest_are_replaced(reference, tmp_path):
    out = tmp_path / "killed"
    (out / "scenes").mkdir(parents=True)
    (out / "scenes" / "house-0000.glb").write_bytes(b"half a house")  # e.g. from a run with another seed
    (out / "shard-00000.h5.partial").write_bytes(b"x")
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": socket.gethostname()}))  # stale: nobody holds it
    render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out)
    assert _files(out) == _files(reference)


def test_a_foreign_folder_is_refused_without_writing_a_lock(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        render_dataset(resolve_sources(["procedural:1"]), config=SMALL, out=out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# ----------------------------------------------------------------------------------------------- repair


def test_repair_renders_only_the_bad_shards(reference, tmp_path, caplog):
    import shutil

    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    shard = out / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    seen = []
    with caplog.at_level("WARNING", logger="envsim.job.folder"):
        render_dataset(resolve_sources(["procedural:2"]), config=SMALL, out=out, repair=True, progress=seen.append)
    assert "shard-00001.h5" in caplog.text and "SHA-256" in caplog.text
    assert seen[0] == 12 and sum(seen) == 18  # two good shards kept, one rendered
    assert _files(out) == _files(reference)


def test_repair_needs_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no dataset to repair"):
        render_dataset(resolve_sources(["procedural:1"]), config=SMALL, out=tmp_path / "none", repair=True)
    assert not (tmp_path / "none").exists()


def test_cli_options(reference, tmp_path, capsys):
    import shutil

    from ess.main import build_parser, main

    help_text = build_parser()._subparsers._group_actions[0].choices["render"].format_help()
    for option in ("--executor", "--workers", "--address", "--repair"):
        assert option in help_text
    args = ["render", "procedural:2", "--views", "9", "--views-per-trajectory", "3", "--size", "20x16", "--seed", "1",
            "--shard-size", "6", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--address", "auto"]) == 2
    assert "--executor ray" in capsys.readouterr().err
    out = tmp_path / "b"
    shutil.copytree(reference, out)
    (out / "shard-00002.h5").unlink()
    assert main([*args, "--out", str(out), "--repair", "--workers", "2"]) == 0
    assert _files(out) == _files(reference)
    assert main([*args, "--out", str(tmp_path / "c"), "--repair"]) == 2
    assert "no dataset to repair" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_run_writes_the_same_bytes_as_a_local_run(reference, tmp_path):
    pytest.importorskip("ray")
    import ray

    assert not ray.is_initialized()
    with pytest.raises(ValueError, match="task 3 failed"):  # a task's own exception, not Ray's wrapper
        run_tasks(_fail_on_three, 0, range(6), config=ExecutorConfig(kind="ray", workers=2), on_done=lambda k, r: None)
    manifest = render_dataset(
        resolve_sources(["procedural:2"]), config=SMALL, out=tmp_path / "ray",
        executor=ExecutorConfig(kind=Executor.RAY, workers=2),  # a local Ray instance with 2 CPUs
    )
    assert not ray.is_initialized()  # the instance the run started is shut down again
    assert manifest["complete"]
    assert _files(tmp_path / "ray") == _files(reference)
