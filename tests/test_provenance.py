"""envsim.provenance and envsim.lock: the routines every layer writes and locks through."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import stat

import numpy as np
import pytest

from envsim.lock import FolderLock, LockedError
from envsim.provenance import atomic_write, derive_rng, durable_replace, file_sha256, to_jsonable, write_json_atomic


def test_atomic_write_is_durable_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "a.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1} and synced == [False, True]  # file, then folder
    monkeypatch.undo()

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_fail)
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    atomic_write(tmp_path / "c.bin", b"xyz", unique=True)
    assert (tmp_path / "c.bin").read_bytes() == b"xyz" and file_sha256(tmp_path / "c.bin") == (
        "3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282")
    (tmp_path / "t").write_bytes(b"1")
    durable_replace(tmp_path / "t", tmp_path / "u")
    assert (tmp_path / "u").read_bytes() == b"1" and not (tmp_path / "t").exists()


def test_to_jsonable_and_derive_rng():
    class Kind(enum.Enum):
        A = "a"

    @dataclasses.dataclass
    class C:
        kind: Kind
        values: tuple

    obj = {1: C(Kind.A, (np.float32(0.5), np.int64(3), np.array([1.0, math.nan]), np.bool_(True)))}
    plain = to_jsonable(obj)
    assert plain["1"]["kind"] == "a" and plain["1"]["values"][:2] == [0.5, 3] and plain["1"]["values"][3] is True
    assert plain["1"]["values"][2][0] == 1.0 and math.isnan(plain["1"]["values"][2][1])
    assert type(plain["1"]["values"][1]) is int and type(plain["1"]["values"][0]) is float
    assert to_jsonable(obj, finite=True)["1"]["values"][2] == [1.0, None]
    json.dumps(to_jsonable(obj, finite=True), allow_nan=False)
    a, b = derive_rng(0, "x", "house-0").random(3), derive_rng(0, "x", "house-0").random(3)
    assert np.array_equal(a, b) and not np.array_equal(a, derive_rng(0, "x", "house-1").random(3))


def test_folder_lock_refuses_a_second_writer_and_cleans_up(tmp_path):
    with FolderLock(tmp_path, ".t.lock", what="ess pair", advice="wait for it"):
        assert json.loads((tmp_path / ".t.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=r"another ess pair \(pid \d+ on .*\) is writing into .*; wait for it"):
            with FolderLock(tmp_path, ".t.lock", what="ess pair", advice="wait for it"):
                pass
    assert not (tmp_path / ".t.lock").exists()
    with FolderLock(tmp_path, ".t.lock", what="ess pair", advice="wait for it"):
        pass  # free again
