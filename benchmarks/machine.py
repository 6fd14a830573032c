"""What every benchmark records next to its figures: machine, library versions, code version."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from envsim.version import code_version


def machine_info() -> dict[str, Any]:
    """CPU, core count, Python and the versions of the libraries on the hot paths."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "open3d-cpu", "open3d", "numba", "h5py", "trimesh", "torch"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "code_version": code_version(),
    }
