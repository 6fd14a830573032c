"""A deterministic LZF compressor (numba) for HDF5 chunks, readable by h5py's own LZF filter.

h5py's LZF filter (HDF5 filter 32000) compiles liblzf with ``INIT_HTAB 0``: the compressor's hash table of
earlier positions lives on the stack uninitialised, so the bytes it writes can depend on what the process
compressed before (identical arrays, different shard files). The compressor here writes the same stream
format (liblzf's ``lzf_c.c``, which ``lzf_d.c`` and hence every LZF reader decodes) with a hash table
cleared for every chunk, so a chunk's compressed bytes depend on its bytes alone. It is the liblzf
algorithm (``ULTRA_FAST``: after a match only its last position is hashed) with a smaller table
(``HLOG`` bits, a multiplicative hash of the next three bytes) that stays in the L1/L2 cache. The table is
not cleared between chunks: entries are stored offset by a running base, and any entry from an earlier chunk
(at or below the base) reads as empty, exactly as if the table had been cleared.

Stream format (liblzf): a control byte ``c < 32`` is a literal run of ``c + 1`` bytes (at most 32) that
follow it; otherwise ``L = c >> 5`` (``L == 7``: the next byte is added) and the back reference copies
``L + 2`` bytes from ``((c & 0x1f) << 8) + next byte + 1`` bytes back (offsets up to 8192, matches of 3 to
264 bytes; the copy may overlap its own output).

The HDF5 side (h5py's ``lzf_filter.c``): the filter compresses into a buffer as long as the chunk and fails
when the output does not fit; the filter is registered optional, so HDF5 then stores the chunk as it came
from the filters before (the shuffle) and sets the filter's bit in the chunk's filter mask. Decompression
sizes its output from ``cd_values[2]`` (the chunk's byte size). :func:`encode_chunks` mirrors this: each
chunk is shuffled (HDF5's byte shuffle, for items wider than one byte) and compressed; a chunk whose
compressed form would not be smaller than the chunk is flagged ``raw`` and keeps the shuffled bytes, to be
written with the LZF bit of the filter mask set.

Parallelism: :func:`encode_chunks` splits the chunks over Python threads that call a ``nogil`` kernel, not
over numba's ``prange``: numba's ``workqueue`` threading layer (the one :mod:`envsim.render.kernels` picks) aborts
the process when two threads launch parallel kernels at once, and the shard writer runs in a thread while
the renderer runs its parallel kernels in another.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

HLOG = 14
"""log2 of the hash table's entries (int32: 64 KiB)."""
HSIZE = 1 << HLOG
MAX_LIT = 32
MAX_OFF = 1 << 13
MAX_REF = (1 << 8) + (1 << 3)
SLACK = 16
"""Bytes past ``limit`` that :func:`_compress_block` may touch before it notices the limit is passed."""
MAX_BASE = (1 << 31) - 1
"""Hash-table entries are int32 ``base + position``."""
MAX_CHUNK = MAX_BASE - SLACK


@numba.njit(nogil=True, cache=True)
def _table_base(htab, base, n):  # pragma: no cover - compiled
    """The base for the next block of ``n`` bytes: ``base`` if its entries still fit int32, else 0 after
    clearing the table."""
    if base + n > MAX_BASE:
        htab[:] = 0
        return 0
    return base


@numba.njit(nogil=True, cache=True)
def _compress_block(src, dst, htab, base, limit):  # pragma: no cover - compiled
    """LZF-compress all of ``src`` (uint8) into ``dst`` (uint8, at least ``limit + SLACK`` long).

    ``htab`` is an int32 (HSIZE,) table whose entries are all ``<= base`` (``base + len(src) <= MAX_BASE``);
    this block stores ``base + position`` in it, and entries ``<= base`` count as empty, so the output
    depends on ``src`` alone. The next block may use ``base + len(src)``.

    Returns:
        The compressed size, or -1 when it would exceed ``limit`` bytes (compression stops early then).
    """
    n = src.shape[0]
    if n == 0:
        return 0
    # Position 0 doubles as "empty": liblzf never refers back to the first byte either.
    mask = HSIZE - 1
    ip = 0
    op = 1  # dst[0] is the first literal run's control byte
    lit = 0
    if n >= 3:
        hval = (np.int64(src[0]) << 8) | np.int64(src[1])
        while ip < n - 2:
            if op > limit:
                return -1
            hval = ((hval << 8) | np.int64(src[ip + 2])) & 0xFFFFFF
            slot = ((hval * 2654435761) >> (32 - HLOG)) & mask
            ref = np.int64(htab[slot]) - base
            htab[slot] = base + ip
            off = ip - ref - 1
            if (
                ref > 0
                and off < MAX_OFF
                and src[ref] == src[ip]
                and src[ref + 1] == src[ip + 1]
                and src[ref + 2] == src[ip + 2]
            ):
                maxlen = n - ip
                if maxlen > MAX_REF:
                    maxlen = MAX_REF
                ln = 3
                while ln < maxlen and src[ref + ln] == src[ip + ln]:
                    ln += 1
                if lit:
                    dst[op - lit - 1] = lit - 1  # close the literal run
                else:
                    op -= 1  # no literals: drop the reserved control byte
                code = ln - 2
                if code < 7:
                    dst[op] = (off >> 8) + (code << 5)
                    op += 1
                else:
                    dst[op] = (off >> 8) + (7 << 5)
                    dst[op + 1] = code - 7
                    op += 2
                dst[op] = off & 0xFF
                op += 2  # and reserve the next run's control byte
                lit = 0
                ip += ln
                if ip >= n - 2:
                    break
                hval = (np.int64(src[ip - 1]) << 16) | (np.int64(src[ip]) << 8) | np.int64(src[ip + 1])
                htab[((hval * 2654435761) >> (32 - HLOG)) & mask] = base + ip - 1
            else:
                dst[op] = src[ip]
                op += 1
                ip += 1
                lit += 1
                if lit == MAX_LIT:
                    dst[op - MAX_LIT - 1] = MAX_LIT - 1
                    lit = 0
                    op += 1
    while ip < n:
        if op > limit:
            return -1
        dst[op] = src[ip]
        op += 1
        ip += 1
        lit += 1
        if lit == MAX_LIT:
            dst[op - MAX_LIT - 1] = MAX_LIT - 1
            lit = 0
            op += 1
    if lit:
        dst[op - lit - 1] = lit - 1
    else:
        op -= 1
    if op > limit:
        return -1
    return op


@numba.njit(nogil=True, cache=True)
def lzf_decompress(src, dst):  # pragma: no cover - compiled
    """Decode the LZF stream ``src`` (uint8) into ``dst`` (uint8); as liblzf's ``lzf_decompress``.

    Returns:
        The decoded size; -1 for a corrupt stream (EINVAL), -2 when ``dst`` is too short (E2BIG).
    """
    n = src.shape[0]
    out_len = dst.shape[0]
    ip = 0
    op = 0
    while ip < n:
        ctrl = np.int64(src[ip])
        ip += 1
        if ctrl < 32:
            ctrl += 1
            if op + ctrl > out_len:
                return -2
            if ip + ctrl > n:
                return -1
            for k in range(ctrl):
                dst[op + k] = src[ip + k]
            op += ctrl
            ip += ctrl
        else:
            ln = ctrl >> 5
            ref = op - ((ctrl & 0x1F) << 8) - 1
            if ip >= n:
                return -1
            if ln == 7:
                ln += np.int64(src[ip])
                ip += 1
                if ip >= n:
                    return -1
            ref -= np.int64(src[ip])
            ip += 1
            ln += 2
            if op + ln > out_len:
                return -2
            if ref < 0:
                return -1
            for k in range(ln):  # byte by byte: the source may overlap what is being written
                dst[op + k] = dst[ref + k]
            op += ln
    return op


@numba.njit(nogil=True, cache=True)
def shuffle(src, dst, itemsize):  # pragma: no cover - compiled
    """HDF5's shuffle filter: byte ``j`` of element ``i`` goes to ``dst[j * n + i]`` (n whole elements);
    trailing bytes that make no whole element are copied as they are."""
    total = src.shape[0]
    n = total // itemsize
    for j in range(itemsize):
        base = j * n
        for i in range(n):
            dst[base + i] = src[i * itemsize + j]
    for k in range(n * itemsize, total):
        dst[k] = src[k]


@numba.njit(nogil=True, cache=True)
def unshuffle(src, dst, itemsize):  # pragma: no cover - compiled
    """The inverse of :func:`shuffle`."""
    total = src.shape[0]
    n = total // itemsize
    for j in range(itemsize):
        base = j * n
        for i in range(n):
            dst[i * itemsize + j] = src[base + i]
    for k in range(n * itemsize, total):
        dst[k] = src[k]


@numba.njit(nogil=True, cache=True)
def _encode_range(data, itemsize, lo, hi, out, sizes, raw):  # pragma: no cover - compiled
    """Shuffle (itemsize > 1) and compress chunks ``lo:hi`` of ``data`` (n, chunk_bytes) into rows of ``out``.

    ``sizes[c]`` is the number of bytes of ``out[c]`` to store; ``raw[c]`` is True when the chunk did not
    shrink and ``out[c]`` holds its (shuffled) bytes uncompressed.
    """
    chunk = data.shape[1]
    htab = np.zeros(HSIZE, np.int32)
    base = 0
    scratch = np.empty(chunk if itemsize > 1 else 0, np.uint8)
    for c in range(lo, hi):
        if itemsize > 1:
            shuffle(data[c], scratch, itemsize)
            src = scratch
        else:
            src = data[c]
        base = _table_base(htab, base, chunk)
        size = _compress_block(src, out[c], htab, base, chunk - 1)
        base += chunk
        if size < 0:
            out[c, :chunk] = src
            sizes[c] = chunk
            raw[c] = True
        else:
            sizes[c] = size
            raw[c] = False


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # the parent's threads do not exist here


os.register_at_fork(after_in_child=_after_fork_in_child)


def _executor() -> ThreadPoolExecutor:
    """The process-wide pool (one thread per core; a caller submits at most as many tasks as it wants
    threads). Never shut down or replaced while in use, so writers in several threads can share it."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="lzf")
            _pool_pid = os.getpid()
        return _pool


def default_threads() -> int:
    """numba's thread count for the calling thread (which :mod:`envsim.job.executor` cuts per worker process)."""
    return max(1, numba.get_num_threads())


def encode_chunks(data: np.ndarray, itemsize: int = 1, *, threads: int | None = None):
    """Shuffle and LZF-compress every row of ``data`` as HDF5's ``shuffle`` + ``lzf`` pipeline would.

    Args:
        data: uint8 (n, chunk_bytes), C-contiguous: one chunk per row.
        itemsize: element size for the shuffle (1: no shuffle).
        threads: threads to spread the chunks over; default :func:`default_threads`.

    Returns:
        ``(out, sizes, raw)``: chunk ``c`` is ``out[c, :sizes[c]]``; ``raw[c]`` is True where the chunk did not
        compress and holds its shuffled bytes as they are (write it with the LZF bit of the filter mask set).
    """
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D (chunks, bytes), got shape {data.shape}")
    n, chunk = data.shape
    if chunk > MAX_CHUNK:
        raise ValueError(f"chunks of {chunk} bytes are too large (at most {MAX_CHUNK})")
    if itemsize < 1:
        raise ValueError("itemsize must be >= 1")
    out = np.empty((n, chunk + SLACK), np.uint8)
    sizes = np.zeros(n, np.int64)
    raw = np.zeros(n, np.bool_)
    if n == 0:
        return out, sizes, raw
    if chunk == 0:
        raw[:] = True
        return out, sizes, raw
    threads = min(n, threads or default_threads())
    if threads <= 1:
        _encode_range(data, itemsize, 0, n, out, sizes, raw)
        return out, sizes, raw
    bounds = [n * t // threads for t in range(threads + 1)]
    pool = _executor()
    futures = [
        pool.submit(_encode_range, data, itemsize, bounds[t], bounds[t + 1], out, sizes, raw)
        for t in range(1, threads)
    ]
    _encode_range(data, itemsize, bounds[0], bounds[1], out, sizes, raw)  # this thread takes the first share
    for f in futures:
        f.result()
    return out, sizes, raw


def compress(data, *, limit: int | None = None) -> bytes | None:
    """LZF-compress a buffer (the same stream :func:`encode_chunks` writes; no shuffle).

    Args:
        data: bytes or an array (its raw bytes are used).
        limit: give up (return None) when the output would exceed this many bytes; default: never (the
            output may then be up to ``len/32 + 1`` bytes longer than the input).
    """
    src = np.frombuffer(memoryview(data).cast("B"), np.uint8) if not isinstance(data, np.ndarray) else (
        np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    n = src.shape[0]
    cap = n + n // MAX_LIT + 1 if limit is None else max(0, limit)
    dst = np.empty(cap + SLACK, np.uint8)
    size = _compress_block(src, dst, np.zeros(HSIZE, np.int32), 0, cap)
    return None if size < 0 else dst[:size].tobytes()


def decompress(data, size: int) -> bytes:
    """Decode an LZF stream whose decoded length is ``size`` bytes.

    Raises:
        ValueError: the stream is corrupt or does not decode to exactly ``size`` bytes.
    """
    src = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    dst = np.empty(size, np.uint8)
    got = lzf_decompress(src, dst) if len(src) else 0
    if got == -2:
        raise ValueError(f"LZF stream decodes to more than {size} bytes")
    if got < 0:
        raise ValueError("corrupt LZF stream")
    if got != size:
        raise ValueError(f"LZF stream decodes to {got} bytes, expected {size}")
    return dst.tobytes()
