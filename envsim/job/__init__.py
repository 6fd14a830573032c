"""The render job: what to render (:mod:`~envsim.job.config`), the driver that plans shards and the manifest
(:mod:`~envsim.job.driver`), the per-shard worker (:mod:`~envsim.job.worker`), the folder's lock and
clean-up (:mod:`~envsim.job.folder`), executors (local processes, Ray), recipes, and reading back what a job
wrote (inspect, preview)."""

from envsim.job.config import DatasetConfig, DatasetError, PoseList, SceneSource, load_poses, resolve_sources
from envsim.job.driver import render_dataset
from envsim.job.folder import LOCK_NAME
from envsim.job.worker import load_nav, nav_path, room_regions, safe_name

__all__ = [
    "LOCK_NAME",
    "DatasetConfig",
    "DatasetError",
    "PoseList",
    "SceneSource",
    "load_nav",
    "load_poses",
    "nav_path",
    "render_dataset",
    "resolve_sources",
    "room_regions",
    "safe_name",
]
