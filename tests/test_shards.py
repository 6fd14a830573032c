import hashlib
import subprocess
import sys

import numpy as np
import pytest

from envsim.store.shards import Compression, ShardLayout, ShardWriter, read_shard


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


_WRITE_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
history, threads, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if history == "busy":  # compress other data first, with h5py's LZF filter and with ours
    import h5py
    from envsim.store import lzf
    junk = np.random.default_rng(99).integers(0, 256, (16, 96, 96, 3), dtype=np.uint8) // 5
    with h5py.File(path + ".junk.h5", "w") as f:
        f.create_dataset("x", data=junk, chunks=(1, 96, 96, 3), compression="lzf", shuffle=True)
    lzf.encode_chunks(junk.reshape(16, -1), 1)
import numba
numba.set_num_threads(threads)
from envsim.store.shards import ShardLayout, ShardWriter
rng = np.random.default_rng(0)
n, h, w = 12, 40, 32
y, x = np.mgrid[0:h, 0:w]
rgb = np.zeros((n, h, w, 3), np.uint8)
rgb[:, : h // 2] = rng.integers(0, 256, (n, 1, 1, 3))  # flat walls
rgb[:, h // 2 :] = ((x + y)[h // 2 :, :, None] * np.arange(1, 4)) % 256  # a gradient floor
rgb[3] = rng.integers(0, 256, (h, w, 3))  # a chunk LZF cannot shrink
depth = (1.0 + 0.05 * y + 0.01 * x + np.arange(n)[:, None, None]).astype(np.float32)
depth[:, :4] = 0
semantic = ((x // 8 + y // 10 * 4) + 100 * np.arange(n)[:, None, None]).astype(np.uint16)
layout = ShardLayout(samples=n, height=h, width=w, semantic_dtype="uint16")
with ShardWriter(path, layout=layout, attrs={"seed": 0}) as wr:
    lo = 0
    for size in (5, 4, 3):
        sl = slice(lo, lo + size)
        wr.write(rgb=rgb[sl], depth=depth[sl], semantic=semantic[sl],
                 pose=np.zeros((size, 4, 4), np.float32), position=np.zeros((size, 3), np.float32),
                 rotation=np.zeros((size, 4), np.float32), light=np.zeros((size, 5), np.float32),
                 scene=np.zeros(size, np.int32), trajectory=np.zeros(size, np.int32),
                 step=np.arange(lo, lo + size, dtype=np.int32), room=np.zeros(size, np.int32))
        lo += size
"""


def test_lzf_shards_are_byte_identical_whatever_the_process_did_before(tmp_path):
    """h5py's LZF filter's bytes can depend on the process's history; the writer's LZF chunks cannot."""
    import h5py

    digests = []
    for i, (history, threads) in enumerate([("fresh", 1), ("busy", 2), ("busy", 1), ("fresh", 2)]):
        path = tmp_path / f"s{i}.h5"
        done = subprocess.run([sys.executable, "-c", _WRITE_IN_A_FRESH_PROCESS, history, str(threads), str(path)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(set(digests)) == 1, digests
    with h5py.File(tmp_path / "s0.h5", "r") as f:
        for key in ("rgb", "depth", "semantic"):  # the pipeline plain h5py reads: shuffle, then lzf
            plist = f[key].id.get_create_plist()
            assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == [2, 32000]
        masks = [f["rgb"].id.get_chunk_info(i).filter_mask for i in range(12)]
        assert masks[3] == 2 and masks.count(0) == 11  # the noise chunk is stored raw, LZF bit set
        assert f["depth"].id.get_chunk_info(0).size < f["depth"][0].nbytes // 2


def test_lzf_writes_convert_and_broadcast_as_h5py_does(tmp_path):
    """The LZF path takes what h5py's own writes take: other dtypes (HDF5's saturating conversion), broadcasting."""
    rng = np.random.default_rng(5)
    b, h, w = 3, 8, 6
    batch = _batch(rng, b, h, w)
    batch["rgb"] = np.broadcast_to(rng.integers(-20, 300, (b, 1, w, 3)), (b, 1, w, 3))  # int64, one row
    batch["depth"] = np.where(rng.random((b, h, w)) < 0.2, 1e6, rng.uniform(0, 10, (b, h, w)))  # float64
    batch["semantic"] = rng.integers(-5, 70_000, (b, h, w))
    got = {}
    for compression in (Compression.LZF, Compression.NONE):
        layout = ShardLayout(samples=b, height=h, width=w, depth_dtype="float16", semantic_dtype="uint16",
                             compression=compression)
        with ShardWriter(tmp_path / f"{compression.value}.h5", layout=layout, attrs=ATTRS) as wr:
            wr.write(**batch)
        got[compression] = read_shard(tmp_path / f"{compression.value}.h5")
    for key in ("rgb", "depth", "semantic"):
        a, ref = got[Compression.LZF][key], got[Compression.NONE][key]
        assert a.dtype == ref.dtype and a.shape == ref.shape
        np.testing.assert_array_equal(a.view(np.uint8), ref.view(np.uint8), err_msg=key)
    assert got[Compression.LZF]["rgb"].max() == 255 and got[Compression.LZF]["rgb"].min() == 0
    bad = _batch(rng, b, h, w)
    bad["rgb"] = bad["rgb"][:, :, :4]
    with pytest.raises(TypeError, match="broadcast"):
        with ShardWriter(tmp_path / "bad.h5", layout=ShardLayout(samples=b, height=h, width=w), attrs=ATTRS) as wr:
            wr.write(**bad)
    assert not (tmp_path / "bad.h5").exists()
