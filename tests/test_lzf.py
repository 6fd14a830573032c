"""envsim.store.lzf: the LZF stream round-trips, h5py's own LZF filter reads it, and the bytes depend on the input
alone."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from envsim.store import lzf

SIZES = [0, 1, 2, 3, 4, 5, 31, 32, 33, 34, 63, 64, 65, 264, 265, 266, 267, 1000, 8191, 8192, 8193, 8195, 20_000, 70_000]


def _smooth_image(rng, h, w, c=3):
    """Image-like bytes: flat rectangles (walls, floor), a gradient band and a noisy band."""
    img = np.zeros((h, w, c))
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        img[y0 : y0 + int(rng.integers(1, h + 1)), x0 : x0 + int(rng.integers(1, w + 1))] = rng.integers(0, 256, c)
    y, x = np.mgrid[0:h, 0:w]
    band = slice(h // 3, h // 2)
    img[band] = np.stack([(x * (k + 1) + y * (3 - k)) % 256 for k in range(c)], axis=-1)[band]
    noisy = slice(h // 2, h // 2 + h // 8 + 1)
    img[noisy] += rng.normal(0, 2, img[noisy].shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _pattern(kind, n, rng):
    if kind == "random":
        return rng.integers(0, 256, n, dtype=np.uint8)
    if kind == "zeros":
        return np.zeros(n, np.uint8)
    if kind == "repeating":
        return np.resize(np.frombuffer(b"abcabdabcab" + bytes(range(9)), np.uint8), n)
    if kind == "walk":
        return (np.cumsum(rng.integers(-1, 2, n)) % 256).astype(np.uint8)
    if kind == "image":
        w = 64
        return _smooth_image(rng, n // (3 * w) + 1, w).reshape(-1)[:n].copy()
    if kind == "mixed":  # runs, noise and long-distance repeats (offsets near and past 8192)
        parts, total = [np.zeros(0, np.uint8)], 0
        while total < n:
            k = int(rng.integers(1, 600))
            choice = rng.integers(0, 4)
            if choice == 0:
                part = np.full(k, rng.integers(0, 256), np.uint8)
            elif choice == 1:
                part = rng.integers(0, 256, k, dtype=np.uint8)
            elif choice == 2 and total > 10:
                start = int(rng.integers(max(0, total - 9000), total))
                part = np.concatenate(parts)[start : start + k]
            else:
                part = np.resize(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8), k)
            parts.append(part)
            total += len(part)
        return np.concatenate(parts)[:n].copy()
    raise ValueError(kind)


KINDS = ["random", "zeros", "repeating", "walk", "image", "mixed"]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_all_sizes(kind):
    rng = np.random.default_rng(len(kind))
    for n in SIZES:
        data = _pattern(kind, n, rng)
        packed = lzf.compress(data)
        assert len(packed) <= n + n // 32 + 1
        assert lzf.decompress(packed, n) == data.tobytes(), (kind, n)


def test_compression_actually_compresses():
    rng = np.random.default_rng(0)
    assert len(lzf.compress(np.zeros(100_000, np.uint8))) < 100_000 // 80  # 264-byte matches: 3 bytes each
    assert len(lzf.compress(_pattern("image", 50_000, rng))) < 0.8 * 50_000
    assert lzf.compress(rng.integers(0, 256, 5000, dtype=np.uint8), limit=4999) is None


def test_limit_is_exact():
    data = _pattern("walk", 3000, np.random.default_rng(1))
    size = len(lzf.compress(data))
    assert lzf.compress(data, limit=size) is not None
    assert lzf.compress(data, limit=size - 1) is None


def test_corrupt_streams_are_refused():
    data = np.zeros(1000, np.uint8)
    packed = lzf.compress(data)
    with pytest.raises(ValueError, match="more than"):
        lzf.decompress(packed, 999)
    with pytest.raises(ValueError, match="decodes to 1000 bytes"):
        lzf.decompress(packed, 1001)
    with pytest.raises(ValueError, match="corrupt"):
        lzf.decompress(bytes([0x20, 0x05]), 10)  # a back reference before the start
    with pytest.raises(ValueError, match="corrupt"):
        lzf.decompress(bytes([5, 1, 2]), 10)  # a literal run past the end of the input


def _decode_chunks(out, sizes, raw, chunk, itemsize):
    rows = []
    for c in range(len(sizes)):
        body = out[c, : sizes[c]].tobytes() if raw[c] else lzf.decompress(out[c, : sizes[c]], chunk)
        shuffled = np.frombuffer(body, np.uint8)
        plain = np.empty(chunk, np.uint8)
        lzf.unshuffle(shuffled, plain, itemsize)
        rows.append(plain)
    return np.stack(rows)


@pytest.mark.parametrize("shape,dtype", [((8, 6, 3), "uint8"), ((64, 64), "float32"), ((37, 5), "uint16"),
                                         ((256, 256, 4), "float32"), ((9, 7), "float64")])
def test_encode_chunks_round_trip(shape, dtype):
    rng = np.random.default_rng(2)
    n = 3 if np.prod(shape) > 100_000 else 6
    base = np.cumsum(rng.normal(size=(n, *shape)), axis=-1)
    if np.dtype(dtype).kind == "u":
        arr = (np.arange(base.size).reshape(base.shape) // 5 % 200).astype(dtype)
    else:
        arr = base.astype(dtype)
    arr[1] = np.frombuffer(rng.bytes(arr[1].nbytes), dtype).reshape(shape)  # noise: no gain from LZF
    chunks = arr.reshape(n, -1).view(np.uint8)
    out, sizes, raw = lzf.encode_chunks(chunks, arr.dtype.itemsize, threads=2)
    assert raw[1] and sizes[1] == chunks.shape[1]
    assert not raw[0] and sizes[0] < chunks.shape[1]
    np.testing.assert_array_equal(_decode_chunks(out, sizes, raw, chunks.shape[1], arr.dtype.itemsize), chunks)


def test_shuffle_is_hdf5s():
    a = np.arange(12, dtype="<u4")
    src = a.view(np.uint8)
    dst = np.empty_like(src)
    lzf.shuffle(src, dst, 4)
    np.testing.assert_array_equal(dst, src.reshape(12, 4).T.reshape(-1))
    back = np.empty_like(src)
    lzf.unshuffle(dst, back, 4)
    np.testing.assert_array_equal(back, src)


def _chunks(kind: str, rng, n: int, shape, dtype):
    if kind == "noise":
        return np.frombuffer(rng.bytes(n * int(np.prod(shape)) * np.dtype(dtype).itemsize), dtype).reshape(n, *shape).copy()
    if dtype == "uint8":
        return np.stack([_smooth_image(rng, *shape[:2], shape[2]) for _ in range(n)])
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    depth = np.stack([1.0 + 0.01 * x + 0.02 * k * y for k in range(n)]).astype(dtype)
    depth[:, : shape[0] // 4] = 0  # no surface
    return depth


def _write_direct(path, arrays):
    """Datasets created as the shard writer creates them (shuffle + lzf, one chunk per sample), chunks
    written by envsim.store.lzf."""
    with h5py.File(path, "w", libver="v110") as f:
        for key, arr in arrays.items():
            d = f.create_dataset(key, arr.shape, dtype=arr.dtype, chunks=(1, *arr.shape[1:]), compression="lzf",
                                 shuffle=True)
            plist = d.id.get_create_plist()
            assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == [h5py.h5z.FILTER_SHUFFLE,
                                                                                     h5py.h5z.FILTER_LZF]
            out, sizes, raw = lzf.encode_chunks(arr.reshape(len(arr), -1).view(np.uint8), arr.dtype.itemsize)
            for i in range(len(arr)):
                d.id.write_direct_chunk((i,) + (0,) * (arr.ndim - 1), out[i, : sizes[i]], 0b10 if raw[i] else 0)


def test_h5py_reads_our_chunks_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {
        "rgb": np.concatenate([_chunks("image", rng, 3, (32, 24, 3), "uint8"), _chunks("noise", rng, 2, (32, 24, 3), "uint8")]),
        "depth": np.concatenate([_chunks("smooth", rng, 3, (32, 24), "float32"), _chunks("noise", rng, 2, (32, 24), "float32")]),
        "semantic": (np.arange(5 * 32 * 24).reshape(5, 32, 24) // 50).astype(np.uint32),
        "big": _chunks("smooth", rng, 2, (256, 1024), "float32"),  # a 1 MiB chunk (256 x 256 x 4 floats)
    }
    _write_direct(tmp_path / "x.h5", arrays)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        masks = [f["rgb"].id.get_chunk_info(i).filter_mask for i in range(5)]
        assert masks == [0, 0, 0, 2, 2]  # the noise chunks are stored shuffled, LZF skipped
    np.savez(tmp_path / "expected.npz", **arrays)
    code = f"""
import sys, h5py, numpy as np
expected = np.load({str(tmp_path / 'expected.npz')!r})
with h5py.File({str(tmp_path / 'x.h5')!r}, 'r') as f:
    for key in expected.files:
        got = f[key][()]
        assert got.dtype == expected[key].dtype and np.array_equal(got.view(np.uint8), expected[key].view(np.uint8)), key
assert not any(m.split('.')[0] == 'envsim' for m in sys.modules)
print('ok')
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_h5py_lzf_filter_decodes_our_streams_fuzz(tmp_path):
    """50 random arrays of every kind and length: h5py's own LZF filter (no shuffle) decodes our stream."""
    rng = np.random.default_rng(4)
    cases = []
    for i in range(50):
        n = int(rng.choice([3, 33, 265, 8193, int(rng.integers(4, 60_000))]))
        cases.append(_pattern(KINDS[i % len(KINDS)], n, rng))
    with h5py.File(tmp_path / "fuzz.h5", "w") as f:
        for i, data in enumerate(cases):
            d = f.create_dataset(str(i), data.shape, dtype=np.uint8, chunks=data.shape, compression="lzf")
            packed = lzf.compress(data, limit=len(data) - 1)
            if packed is None:  # incompressible: HDF5 would store it raw with the LZF bit set
                d.id.write_direct_chunk((0,), data.tobytes(), 0b1)
            else:
                d.id.write_direct_chunk((0,), packed, 0)
    compressed = 0
    with h5py.File(tmp_path / "fuzz.h5", "r") as f:
        for i, data in enumerate(cases):
            np.testing.assert_array_equal(f[str(i)][()], data, err_msg=str(i))
            compressed += f[str(i)].id.get_chunk_info(0).filter_mask == 0
    assert compressed >= 25


def test_our_decoder_reads_h5pys_lzf(tmp_path):
    """The other way round: chunks compressed by h5py's filter decode with lzf_decompress."""
    rng = np.random.default_rng(5)
    with h5py.File(tmp_path / "h.h5", "w") as f:
        for i in range(12):
            data = _pattern(KINDS[i % len(KINDS)], int(rng.integers(100, 30_000)), rng)
            f.create_dataset(str(i), data=data, chunks=data.shape, compression="lzf")
    with h5py.File(tmp_path / "h.h5", "r") as f:
        for i in range(12):
            data = f[str(i)][()]
            mask, body = f[str(i)].id.read_direct_chunk((0,))
            if mask == 0:
                assert lzf.decompress(body, len(data)) == data.tobytes()


def test_same_input_same_bytes_whatever_came_before():
    rng = np.random.default_rng(6)
    a = np.stack([_smooth_image(rng, 48, 40) for _ in range(7)]).reshape(7, -1)
    depth = _chunks("smooth", rng, 7, (48, 40), "float32").reshape(7, -1).view(np.uint8)

    def encoded(chunks, itemsize, threads):
        out, sizes, raw = lzf.encode_chunks(chunks, itemsize, threads=threads)
        return [out[i, : sizes[i]].tobytes() for i in range(len(sizes))], raw.tolist()

    ref = encoded(a, 1, 1)
    lzf.encode_chunks(rng.integers(0, 256, (5, a.shape[1]), dtype=np.uint8), 1)  # something else first
    assert encoded(a, 1, 2) == ref
    assert encoded(a, 1, 3) == ref
    reversed_ = encoded(a[::-1].copy(), 1, 2)  # other order, other threads: each chunk alone decides its bytes
    assert reversed_[0][::-1] == ref[0]
    for i in range(len(a)):  # one chunk at a time after the others
        assert encoded(a[i : i + 1], 1, 1)[0] == [ref[0][i]]
    d1 = encoded(depth, 4, 2)
    lzf.compress(rng.integers(0, 256, 70_000, dtype=np.uint8))
    assert encoded(depth, 4, 1) == d1


def test_table_base_counts_earlier_entries_as_empty():
    """Entries left by earlier chunks (below the base) never become references, and the table is cleared
    before the int32 entries would overflow."""
    rng = np.random.default_rng(7)
    first, second = _pattern("image", 30_000, rng), _pattern("mixed", 30_000, rng)
    fresh = lzf.compress(second)
    htab = np.zeros(lzf.HSIZE, np.int32)
    dst = np.empty(40_000, np.uint8)
    base = 1_000_000
    lzf._compress_block(first, dst, htab, base, 39_000)
    for base2 in (base + len(first), base + 10 * len(first)):
        size = lzf._compress_block(second, dst, htab, base2, 39_000)
        assert dst[:size].tobytes() == fresh
    high = lzf.MAX_BASE - 100
    assert lzf._table_base(htab, high, 100) == high
    assert htab.any()
    assert lzf._table_base(htab, high, 101) == 0 and not htab.any()
