import hashlib
import subprocess
import sys

import numpy as np
import pytest

from envsim.shards import Compression, ShardLayout, ShardWriter, read_shard


def _batch(rng, n, h=8, w=6, semantic=False):
    b = dict(
        rgb=rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
        depth=rng.uniform(0, 10, (n, h, w)).astype(np.float32),
        pose=rng.normal(size=(n, 4, 4)).astype(np.float32),
        position=rng.normal(size=(n, 3)).astype(np.float32),
        rotation=rng.normal(size=(n, 4)).astype(np.float32),
        light=rng.normal(size=(n, 5)).astype(np.float32),
        scene=rng.integers(0, 3, n).astype(np.int32),
        trajectory=rng.integers(0, 5, n).astype(np.int32),
        step=np.arange(n, dtype=np.int32),
        room=rng.integers(-1, 7, n).astype(np.int32),
    )
    if semantic:
        b["semantic"] = rng.integers(0, 70000, (n, h, w)).astype(np.uint32)
    return b


ATTRS = {"K": np.eye(3), "room_names": ["bathroom", "bedroom"], "scene_names": ["a", "b", "c"], "seed": 0}


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("semantic", [False, True])
def test_round_trip_in_batches(tmp_path, compression, semantic):
    rng = np.random.default_rng(0)
    parts = [_batch(rng, n, semantic=semantic) for n in (3, 1, 6)]
    layout = ShardLayout(samples=10, height=8, width=6, semantic_dtype="uint32" if semantic else None, compression=compression)
    with ShardWriter(tmp_path / "shard-00000.h5", layout=layout, attrs=ATTRS) as w:
        for p in parts:
            w.write(**p)
    if compression is Compression.LZ4:
        import hdf5plugin  # noqa: F401  (registers the Blosc filter for reading)
    got = read_shard(tmp_path / "shard-00000.h5")
    for key in parts[0]:
        np.testing.assert_array_equal(got[key], np.concatenate([p[key] for p in parts]), err_msg=key)
    assert got["attrs"]["scene_names"] == ["a", "b", "c"]
    assert got["attrs"]["format_version"] == 1
    np.testing.assert_array_equal(got["attrs"]["K"], np.eye(3))
    assert not list(tmp_path.glob("*.partial"))


def test_same_arrays_give_same_bytes(tmp_path):
    digests = []
    for name in ("a.h5", "b.h5"):
        batch = _batch(np.random.default_rng(3), 4)
        with ShardWriter(tmp_path / name, layout=ShardLayout(samples=4, height=8, width=6), attrs=ATTRS) as w:
            w.write(**batch)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_an_exception_leaves_no_shard(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "s.h5", layout=ShardLayout(samples=4, height=8, width=6), attrs=ATTRS) as w:
            w.write(**_batch(rng, 2))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_or_overfull_shard_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="got 2 of 4"):
        with ShardWriter(tmp_path / "s.h5", layout=ShardLayout(samples=4, height=8, width=6), attrs=ATTRS) as w:
            w.write(**_batch(rng, 2))
    assert list(tmp_path.iterdir()) == []
    with ShardWriter(tmp_path / "t.h5", layout=ShardLayout(samples=2, height=8, width=6), attrs=ATTRS) as w:
        with pytest.raises(ValueError, match="overflows"):
            w.write(**_batch(rng, 3))
        w.write(**_batch(rng, 2))
    bad = _batch(rng, 2)
    del bad["room"]
    with pytest.raises(ValueError, match="needs the datasets"):
        with ShardWriter(tmp_path / "u.h5", layout=ShardLayout(samples=2, height=8, width=6), attrs=ATTRS) as w:
            w.write(**bad)


def test_readable_with_h5py_and_numpy_only(tmp_path):
    rng = np.random.default_rng(1)
    batch = _batch(rng, 3)
    with ShardWriter(tmp_path / "s.h5", layout=ShardLayout(samples=3, height=8, width=6), attrs=ATTRS) as w:
        w.write(**batch)
    np.save(tmp_path / "depth.npy", batch["depth"])
    code = f"""
import sys, h5py, numpy as np
with h5py.File({str(tmp_path / 's.h5')!r}, 'r') as f:
    d = f['depth'][()]
    assert f['rgb'].chunks == (1, 8, 6, 3)
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs['room_names']]
assert names == ['bathroom', 'bedroom'], names
assert np.array_equal(d, np.load({str(tmp_path / 'depth.npy')!r}))
assert not any(m.split('.')[0] in ('envsim', 'hdf5plugin') for m in sys.modules), 'imported more than h5py'
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
