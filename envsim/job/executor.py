"""Where independent tasks run: in this process, in local worker processes, or as Ray tasks on a cluster.

A task is ``fn(job, key)``: ``fn`` a top-level (picklable) function, ``job`` a small frozen dataclass shared
by every task, ``key`` what tells the tasks apart (e.g. a shard index). :func:`run_tasks` calls
``on_done(key, result)`` in the calling process as each task finishes, in whatever order they finish;
callers that need a deterministic result order it by key themselves.

Threads: Open3D's ray casting and the numba kernels each use every core of a machine. With several worker
processes on one machine, each worker's numba pool is cut to ``cores // workers`` threads; Open3D's
Embree/TBB pool has no process-wide setting (``RaycastingScene.cast_rays`` takes an ``nthreads`` argument,
which :mod:`envsim.render.raycast` leaves at 0 = all cores), so the workers share the cores through the OS
scheduler.

Ray: ``pip install 'ess-toolkit[ray]'``. The package must be importable on every node of the cluster, and
whatever the tasks write (a render job's output folder) must lie on a filesystem every node sees at the
same path (NFS, Lustre, a cloud bucket mount, ...).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

K = TypeVar("K")
R = TypeVar("R")

RAY_HINT = "pip install 'ess-toolkit[ray]'"


class Executor(str, Enum):
    """What runs the tasks of a job."""

    LOCAL = "local"  # this machine: worker processes (``workers`` = 1: this process)
    RAY = "ray"  # Ray tasks on a cluster (or a local Ray instance)


class ExecutorError(ValueError):
    """The executor cannot run as asked (Ray missing or unreachable, a worker process died)."""


@dataclass(frozen=True)
class ExecutorConfig:
    """How to run a job's tasks.

    Attributes:
        kind: local processes or Ray.
        workers: local: worker processes; None = one per core, at most one per task; 1 = run every task
            in the calling process (no pool). Ray: CPUs of the local Ray instance started when no
            ``address`` is given (None = all cores); ignored when attaching to a cluster.
        address: Ray only: the cluster to attach to (``ray://head:10001``, ``auto``, ``host:6379``);
            None = ``RAY_ADDRESS`` or a Ray instance on this machine (attached or started).
    """

    kind: Executor = Executor.LOCAL
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Executor(self.kind))
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.address is not None and self.kind is not Executor.RAY:
            raise ValueError("--address names a Ray cluster: use it with --executor ray")


def make_executor_config(*, kind: str | Executor = Executor.LOCAL, workers: int | None = None,
                         address: str | None = None) -> ExecutorConfig:
    """An :class:`ExecutorConfig` from command-line values (ValueError naming the option to fix)."""
    try:
        kind = Executor(kind)
    except ValueError:
        raise ValueError(f"--executor must be one of {', '.join(e.value for e in Executor)}, got {kind!r}") from None
    return ExecutorConfig(kind=kind, workers=workers, address=address or None)


def local_workers(config: ExecutorConfig, tasks: int) -> int:
    """Processes a local run of ``tasks`` tasks uses (1 = in the calling process)."""
    if config.workers is not None:
        return max(1, min(config.workers, tasks))
    return max(1, min(os.cpu_count() or 1, tasks))


def in_process(config: ExecutorConfig | None, tasks: int) -> bool:
    """Whether :func:`run_tasks` would run the tasks in the calling process (then ``fn`` need not pickle)."""
    return config is None or (config.kind is Executor.LOCAL and local_workers(config, tasks) == 1)


def run_tasks(
    fn: Callable[[Any, K], R],
    job: Any,
    keys: Iterable[K],
    *,
    config: ExecutorConfig | None,
    on_done: Callable[[K, R], None],
    gpus: float = 0.0,
) -> None:
    """Run ``fn(job, key)`` for every key, calling ``on_done(key, result)`` here as each one finishes.

    Keys are submitted in order; results arrive in completion order. The first failing task stops the run:
    tasks not started are cancelled, running ones are killed, and its exception is raised here.

    Args:
        fn: a top-level function (pickled by reference into worker processes or Ray tasks).
        job: the shared, picklable argument (pickled with each local task; put in Ray's object store once).
        keys: one task per key.
        config: the executor; None = in the calling process.
        on_done: called in the calling process with each key and its result.
        gpus: GPUs each Ray task asks for when the cluster has GPUs (0 for CPU work); local runs ignore it.

    Raises:
        ExecutorError: Ray is missing or unreachable, or a worker process died.
    """
    keys = list(keys)
    if not keys:
        return
    if in_process(config, len(keys)):
        for key in keys:
            on_done(key, fn(job, key))
        return
    if config.kind is Executor.RAY:
        _run_ray(fn, job, keys, config=config, on_done=on_done, gpus=gpus)
        return
    _run_processes(fn, job, keys, workers=local_workers(config, len(keys)), on_done=on_done)


# ------------------------------------------------------------------------------------------- local pool


def _run_processes(fn, job, keys, *, workers: int, on_done) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    # 'spawn': Open3D (TBB) and numba start thread pools at import; a forked child would inherit them broken.
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(threads, os.getpid()),
    )
    ok = False
    try:
        futures = {pool.submit(fn, job, key): key for key in keys}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: keys.index(futures[f])):
                on_done(futures[fut], fut.result())
        ok = True
    except BrokenProcessPool as exc:
        raise ExecutorError("a worker process died (out of memory or killed); run the same command again to resume") from exc
    finally:
        if ok:
            pool.shutdown(wait=True)
        else:  # stop now: no task is started after a failure or Ctrl-C, running ones are killed
            _terminate(pool)


def _terminate(pool) -> None:
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.terminate()
    for p in processes:
        p.join()


def _init_worker(threads: int, parent: int) -> None:
    """Worker set-up: die with the parent, leave Ctrl-C to it, and share the cores with the other workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers on Ctrl-C
    _die_with_parent(parent)
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive a killed parent (it would keep writing into the output folder while the
    rerun writes there too): on Linux the kernel kills it (PR_SET_PDEATHSIG); elsewhere a thread watches."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
                if os.getppid() != parent:  # the parent died before prctl
                    os._exit(1)
                return
        except (OSError, AttributeError):  # pragma: no cover - libc without prctl
            pass

    def watch() -> None:  # pragma: no cover - non-Linux
        import time

        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# ------------------------------------------------------------------------------------------------- Ray


def _run_ray(fn, job, keys, *, config: ExecutorConfig, on_done, gpus: float) -> None:
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray: {RAY_HINT}") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        if config.address is None and config.workers is not None:
            kwargs["num_cpus"] = config.workers  # only used when a new local instance starts
        if config.address is not None:
            _check_reachable(config.address)  # Ray itself retries an unreachable head for minutes
        try:
            ray.init(address=config.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {config.address}" if config.address else "on this machine"
            raise ExecutorError(f"cannot start or reach a Ray cluster {where}: {exc}".splitlines()[0]) from exc
        started = True
    refs: dict[Any, Any] = {}
    try:
        ask = gpus if gpus and ray.cluster_resources().get("GPU", 0) >= gpus else 0
        task = ray.remote(fn).options(num_cpus=1, num_gpus=ask)
        job_ref = ray.put(job)
        refs = {task.remote(job_ref, key): key for key in keys}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                except ray.exceptions.WorkerCrashedError as exc:
                    raise ExecutorError(f"a Ray worker died: {exc}".splitlines()[0]) from exc
                on_done(refs[ref], result)
        refs = {}
    finally:
        for ref in refs:  # after a failure or Ctrl-C: stop the rest
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - finished or already gone
                pass
        if started:
            ray.shutdown()


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast with a clear message when a ``[ray://]HOST:PORT`` address does not answer."""
    import socket

    host_port = address.removeprefix("ray://").rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():  # "auto", "local", ...: Ray resolves them
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def gpus_per_task(render_config: Any) -> float:
    """GPUs a render task asks Ray for: 1 for a GPU ray-casting backend (Mitsuba on CUDA; ``auto`` picks it
    when the worker has a GPU), else 0. Ray only grants them when the cluster has GPUs, so a GPU backend on a
    CPU-only cluster falls back to the CPU as it does locally."""
    backend = getattr(render_config, "backend", None)
    name = getattr(backend, "value", backend)
    return 1.0 if name in ("mitsuba", "auto") else 0.0


__all__ = [
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "gpus_per_task",
    "in_process",
    "local_workers",
    "make_executor_config",
    "run_tasks",
]
