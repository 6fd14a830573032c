"""Read shards + pairs and yield ``(view_a, view_b, weight, metadata)`` for any contrastive trainer.

:class:`SpatialPairs` needs only numpy and h5py; it is a map-style dataset (``__len__`` and
``__getitem__``), so ``torch.utils.data.DataLoader`` takes it as it is, with ``num_workers > 0`` too: HDF5
files are opened lazily inside each worker. :func:`iter_batches` is the same without torch.

Item ``i`` is anchored on view ``i``; its partner is drawn among the view's positives (``UNIFORM``: every
positive equally likely, weight 1 or, for ESS-MW, the pair's weight in the loss; ``WEIGHTED``: in proportion
to the spatial weight, in which case the loss should weigh the pair 1, or the weight counts twice) from a
generator seeded by (seed, epoch, i), so a run is reproducible whatever the number of workers. A view
without positives is paired with itself (two augmentations of one image, as in plain MoCo) with weight 1.
``ess train`` samples ``UNIFORM`` for both ESS methods and puts ESS-MW's weight in the targets.

Memory: only what partner draws need stays in memory (:class:`PartnerTable`, built from the pairs file in row
blocks): per pair its second view as an offset from its first (``uint8``/``uint16``/``uint32``, the narrowest
that fits), its row in the by-second-view index (``int32``), and the positive flag (``uint8``) or, for
``WEIGHTED``, the ESS-MW weight (``float32``, -1 for a non-positive pair), plus two ``int32`` offsets per view:
6 to 8 bytes a pair (9 to 11 weighted; ``table.bytes_per_pair()``, offsets included, each pair counted once)
where the pairs file's arrays take ~80. Everything else of a pair (distance, angle, covisibility, relative
pose) is read from the file when asked for (:class:`pairing.store.PairRows`, opened lazily in each process),
and the file's arrays stay reachable as :class:`pairing.store.PairColumn` attributes (``pairs``, ``weight``,
``distance``, ...), whose indexing reads only the rows asked for. A ``DataLoader`` batch is read by
``__getitems__``: the batch's partners are drawn together (:func:`uniform_draws`: numpy's draws, bit for bit)
and its pair fields read once.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envsim.store.reader import DatasetReader
from pairing.store import (
    BLOCK_ROWS,
    PAIRS_NAME,
    PairColumn,
    PairRows,
    iter_blocks,
    pairs_sorted,
    place_by_key,
    read_pairs,
)

PAIR_KEYS = ("pair", "distance", "angle", "weight", "positive", "covisibility", "rel_translation", "rel_rotation",
             "view_offsets", "view_pairs")  # the pairs file's per-pair datasets (and its CSR)
SAME_POSE_ANGLE = 1e-6  # radians: a pair at distance 0 and below this angle shows one pose under two lights


class PartnerSampling(str, Enum):
    """How a partner is drawn among a view's positives."""

    SELF = "self"  # plain MoCo: the view itself (two augmentations of one image)
    UNIFORM = "uniform"  # ESS-MB: every positive equally likely, weight 1
    WEIGHTED = "weighted"  # ESS-MW: probability and weight from the spatial similarity
    LIGHT = "light"  # the same pose under another light (``ess render --light-variants``), else itself


@dataclass(frozen=True)
class PartnerTable:
    """Every view's pairs, as partner draws need them: rows of the pairs file, partners, positive flags.

    The file keeps pair rows sorted by (a, b) with a < b, so the pairs of view ``v`` are its rows as b (each
    a < v: before its own block) followed by its rows as a (one contiguous block), together the file's CSR
    list of ``v`` in the same ascending order.

    Attributes:
        up_start: int32 (N+1,) view ``v``'s rows as a are ``[up_start[v], up_start[v+1])`` (int64 past 2**31
            pairs).
        up_delta: uint8/uint16/uint32 (P,) ``b - a`` of every row (the narrowest unsigned type that fits).
        low_start: int32 (N+1,) offsets into ``low_row`` per view.
        low_row: int32 (P,) view ``v``'s rows as b are ``low_row[low_start[v]:low_start[v+1]]``, ascending.
        positive: uint8 (P,) 1 for a positive under the dataset's rule; None when ``weight`` holds it.
        weight: float32 (P,) ESS-MW weight of a positive pair, -1 for any other; None unless drawn by weight.
    """

    up_start: np.ndarray
    up_delta: np.ndarray
    low_start: np.ndarray
    low_row: np.ndarray
    positive: np.ndarray | None
    weight: np.ndarray | None

    @property
    def nbytes(self) -> int:
        """Bytes of every array (offsets included)."""
        arrays = (self.up_start, self.up_delta, self.low_start, self.low_row, self.positive, self.weight)
        return int(sum(a.nbytes for a in arrays if a is not None))

    def bytes_per_pair(self) -> float:
        """:attr:`nbytes` over the P pairs of the file (each pair counted once, both its ends together)."""
        return self.nbytes / max(len(self.up_delta), 1)

    def rows_of(self, view: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, partners) of every pair of ``view``, rows ascending: int64 (k,) each."""
        lo = self.low_row[self.low_start[view] : self.low_start[view + 1]]  # (k_b,) rows as b
        u0, u1 = int(self.up_start[view]), int(self.up_start[view + 1])
        rows = np.concatenate([lo.astype(np.int64), np.arange(u0, u1, dtype=np.int64)])
        partners = np.concatenate([np.searchsorted(self.up_start, lo, side="right") - 1,
                                   self.up_delta[u0:u1] + np.int64(view)])
        return rows, partners

    def rows_of_many(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`rows_of` of many views, concatenated: (item, rows, partners), int64 (K,) each, ``item`` the
        position of the view in ``views`` (ascending; each view's rows in :meth:`rows_of` order)."""
        views = np.asarray(views, np.int64)  # (B,)
        lo0, up0 = self.low_start[views].astype(np.int64), self.up_start[views].astype(np.int64)
        n_lo, n_up = self.low_start[views + 1] - lo0, self.up_start[views + 1] - up0  # (B,) rows as b, as a
        size = n_lo + n_up  # (B,)
        item = np.repeat(np.arange(len(views)), size)  # (K,)
        t = np.arange(len(item)) - np.repeat(np.cumsum(size) - size, size)  # (K,) place in its view's list
        lower = t < n_lo[item]
        rows = up0[item] + t - n_lo[item]  # (K,) rows as a; rows as b below
        if len(self.low_row):
            rows[lower] = self.low_row[(lo0[item] + t)[lower]]
        partners = views[item] + self.up_delta[rows]  # rows as a; rows as b below
        partners[lower] = np.searchsorted(self.up_start, rows[lower], side="right") - 1
        return item, rows, partners

    def is_positive(self, rows: np.ndarray) -> np.ndarray:
        """bool (k,) whether each row is a positive pair."""
        return self.weight[rows] >= 0 if self.weight is not None else self.positive[rows].astype(bool)


# --- seeded draws, many views at once ---------------------------------------------------------------------
# ``numpy.random.default_rng(entropy).integers(k)`` for many entropies at once, bit for bit: SeedSequence's
# pool and generate_state (numpy/random/bit_generator.pyx), PCG64's seeding and first output (pcg64.h: XSL-RR
# over a 128-bit LCG), Lemire's bounded draw of the output's low 32-bit word (distributions.c). A draw that
# Lemire would reject and redraw (probability below k / 2**32) is left to numpy, and so is every draw when
# the self-check against numpy fails (another numpy).

_M32, _M64, _M128 = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341


def _words(value: int) -> list[int]:
    """SeedSequence's uint32 words of a non-negative int (least significant first; 0 is one word)."""
    out = [value & _M32]
    while value > _M32:
        value >>= 32
        out.append(value & _M32)
    return out


def _seed_states(prefix: tuple[int, ...], last: np.ndarray) -> np.ndarray:
    """uint64 (B, 4) ``SeedSequence((*prefix, v)).generate_state(4, np.uint64)`` for every ``v`` of ``last``
    (int64 (B,), each below 2**32), computed with uint32 arithmetic held in uint64 arrays."""
    m32 = np.uint64(_M32)
    entropy = [np.full(len(last), w, np.uint64) for p in prefix for w in _words(int(p))] + [last.astype(np.uint64)]
    h = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal h
        value = value ^ np.uint64(h)
        h = (h * _MULT_A) & _M32
        value = (value * np.uint64(h)) & m32
        return value ^ (value >> np.uint64(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = ((np.uint64(_MIX_L) * x) - (np.uint64(_MIX_R) * y)) & m32
        return r ^ (r >> np.uint64(16))

    zero = np.zeros(len(last), np.uint64)
    pool = [hashmix(entropy[i] if i < len(entropy) else zero) for i in range(4)]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(4, len(entropy)):
        for dst in range(4):
            pool[dst] = mix(pool[dst], hashmix(entropy[src]))
    h, words = _INIT_B, []
    for i in range(8):
        value = pool[i % 4] ^ np.uint64(h)
        h = (h * _MULT_B) & _M32
        value = (value * np.uint64(h)) & m32
        words.append(value ^ (value >> np.uint64(16)))
    return np.stack([words[2 * k] | (words[2 * k + 1] << np.uint64(32)) for k in range(4)], axis=1)


def _lemire(state: list[int], k: int) -> int:
    """The first ``integers(k)`` of a PCG64 seeded with ``generate_state`` words ``state``; -1 when Lemire's
    method would reject the first 32-bit word (the caller asks numpy then)."""
    inc = ((((state[2] << 64) | state[3]) << 1) | 1) & _M128
    st = (inc + ((state[0] << 64) | state[1])) & _M128  # state 0, one step, plus the seed
    st = (st * _PCG_MULT + inc) & _M128  # seeding's second step
    st = (st * _PCG_MULT + inc) & _M128  # the first draw's step
    hi = st >> 64
    rot = hi >> 58
    x = hi ^ (st & _M64)
    word = ((x >> rot) | (x << (64 - rot))) & _M64 & _M32 if rot else x & _M32  # XSL-RR output, low half first
    m = word * k
    if (m & _M32) < k and (m & _M32) < ((1 << 32) - k) % k:
        return -1
    return m >> 32


@functools.lru_cache(maxsize=1)
def _batched_draws_agree() -> bool:
    """Whether :func:`uniform_draws` gives numpy's draws on this numpy (checked once per process)."""
    last = np.array([0, 1, 7, 123456, 2**32 - 1], np.int64)
    for prefix in ((0, 0), (5, 3), (2**40 + 3, 0), (1, 2, 3, 4), (7,)):
        for k in (1, 2, 3, 97, 2**31 + 5):
            want = [int(np.random.default_rng((*prefix, int(v))).integers(k)) for v in last]
            if _uniform_draws(prefix, last, np.full(len(last), k)) != want:
                return False
    return True


def uniform_draws(prefix: tuple[int, ...], last: np.ndarray, counts: np.ndarray) -> list[int]:
    """``[int(np.random.default_rng((*prefix, v)).integers(c)) for v, c in zip(last, counts)]``, for many
    views at a time (a fifth of the time of one generator each).

    Args:
        prefix: the first entropy words (seed, epoch), each >= 0.
        last: int (B,) the last entropy word of each draw (a view), each in [0, 2**32).
        counts: int (B,) the number of choices of each draw, each >= 1.
    """
    if min(prefix, default=0) < 0 or not _batched_draws_agree():  # numpy refuses negative entropy itself
        return [int(np.random.default_rng((*prefix, int(v))).integers(int(c))) for v, c in zip(last, counts)]
    return _uniform_draws(prefix, np.asarray(last, np.int64), counts)


def _uniform_draws(prefix: tuple[int, ...], last: np.ndarray, counts: np.ndarray) -> list[int]:
    out = [0] * len(last)
    many = np.flatnonzero(np.asarray(counts) > 1)  # integers(1) is 0 without a draw
    if len(many):
        states = _seed_states(prefix, last[many]).tolist()
        for i, state in zip(many.tolist(), states):
            k = int(counts[i])
            out[i] = _lemire(state, k) if k <= _M32 else -1
            if out[i] < 0:
                out[i] = int(np.random.default_rng((*prefix, int(last[i]))).integers(k))
    return out


def positive_blocks(rows: PairRows, min_covisibility: float | None) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, bool (B,)) blocks of the positive flags: the file's, or mean covisibility >= the threshold."""
    key = "positive" if min_covisibility is None else "covisibility"
    for start, block in iter_blocks(rows, (key,)):
        flags = block[key].astype(bool) if min_covisibility is None else block[key].mean(axis=1) >= min_covisibility
        yield start, flags


def load_partner_table(rows: PairRows, n_views: int, *, weights: bool, min_covisibility: float | None) -> PartnerTable:
    """The :class:`PartnerTable` of a pairs file, read in row blocks (never a whole dataset at once).

    Args:
        rows: the pairs file.
        n_views: N, the dataset's views.
        weights: keep ESS-MW weights (``WEIGHTED`` draws) instead of positive flags.
        min_covisibility: positives by mean covisibility instead of the file's flags (None: the file's).

    Raises:
        ValueError: the file's pairs are not sorted by (a, b) with a < b (an older or foreign file).
    """
    n_pairs = rows.info("pair")[0][0]
    index = np.int32 if 2 * n_pairs < 2**31 else np.int64
    up_count, low_count = np.zeros(n_views, np.int64), np.zeros(n_views, np.int64)
    delta = np.empty(n_pairs, np.uint8)
    last = np.zeros((0, 2), np.int64)
    for s, block in iter_blocks(rows, ("pair",)):
        pair = block["pair"]
        if not pairs_sorted(np.concatenate([last, pair[:1]])) or not pairs_sorted(pair):
            raise ValueError(f"{rows.path}: pairs are not sorted by (a, b) with a < b; rebuild it with `ess pair --force`")
        last, d = pair[-1:], pair[:, 1] - pair[:, 0]
        for wider in (np.uint16, np.uint32):  # views are below 2**32
            if len(d) and d.max() > np.iinfo(delta.dtype).max:
                delta = delta.astype(wider)
        delta[s : s + len(d)] = d
        up_count += np.bincount(pair[:, 0], minlength=n_views)
        low_count += np.bincount(pair[:, 1], minlength=n_views)
    up_start = np.concatenate([[0], np.cumsum(up_count)]).astype(index)  # (N+1,)
    low_start = np.concatenate([[0], np.cumsum(low_count)]).astype(index)  # (N+1,)
    del up_count, low_count
    low_row = np.empty(n_pairs, index)
    cursor = low_start[:-1].astype(np.int64)  # (N,) next free slot per view
    for s in range(0, n_pairs, BLOCK_ROWS):
        r = np.arange(s, min(s + BLOCK_ROWS, n_pairs), dtype=np.int64)  # (B,)
        b = np.searchsorted(up_start, r, side="right") - 1 + delta[r]  # (B,) each row's second view
        place_by_key(low_row, cursor, b, r)
    flags = np.empty(n_pairs, np.float32 if weights else np.uint8)
    for s, positive in positive_blocks(rows, min_covisibility):
        flags[s : s + len(positive)] = np.where(positive, rows.block("weight", s, s + len(positive)), -1) if weights else positive
    return PartnerTable(up_start=up_start, up_delta=delta, low_start=low_start, low_row=low_row,
                        positive=None if weights else flags, weight=flags if weights else None)


class SpatialPairs:
    """Positive pairs of a rendered dataset.

    Args:
        folder: the dataset folder (shards + ``manifest.json``).
        pairs_file: the pairs file (default ``<folder>/pairs.h5`` from ``ess pair``).
        sampling: partner sampling.
        transform: applied to each view's image (uint8 (H, W, 3) RGB, or a dict with ``rgb`` and
            ``depth`` when ``with_depth``); its output is what ``view_a``/``view_b`` hold.
        with_depth: also read depth (metres, float32 (H, W)).
        min_covisibility: when given, only pairs whose mean covisibility reaches it count as positives
            (overrides the file's rule; needs covisibility in the file).
        subset: bool (N,) mask of the views to use (e.g. the training split); items and partners both
            come from it, so held-out views never leak in as partners.
        seed: partner-sampling seed.

    Attributes:
        table: what partner draws need, in memory (:class:`PartnerTable`; ``table.nbytes``).
        pairs, weight, distance, angle, covisibility, rel_translation, rel_rotation, offsets, view_pairs: the
            pairs file's datasets (``covisibility`` None when absent) as :class:`pairing.store.PairColumn`:
            indexing reads the rows asked for, ``numpy.asarray`` a whole dataset.
        positive: bool (P,) positives under the dataset's rule (read on each access).
        meta: per-view metadata (:meth:`envsim.store.reader.DatasetReader.meta`).

    Raises:
        ValueError: missing pairs file, or a pairs file built for another dataset.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        pairs_file: str | os.PathLike | None = None,
        sampling: PartnerSampling = PartnerSampling.UNIFORM,
        transform: Callable[[Any], Any] | None = None,
        with_depth: bool = False,
        min_covisibility: float | None = None,
        subset: np.ndarray | None = None,
        seed: int = 0,
    ):
        self.reader = DatasetReader(folder)
        path = Path(pairs_file) if pairs_file is not None else self.reader.folder / PAIRS_NAME
        if not path.is_file():
            raise ValueError(f"no pairs file at {path}; build it with `ess pair {self.reader.folder}`")
        attrs = read_pairs(path, keys=())["attrs"]
        if attrs.get("dataset_manifest_sha256") != self.reader.manifest_sha256():
            raise ValueError(f"{path} was built for another dataset; rebuild it with `ess pair --force`")
        self.sampling = PartnerSampling(sampling)
        self.transform = transform
        self.with_depth = with_depth
        self.seed = int(seed)
        self.epoch = 0
        self.source = PairRows(path)
        stored = self.source.keys()
        if min_covisibility is not None and "covisibility" not in stored:
            raise ValueError(f"{path} has no covisibility; rebuild it without --no-covisibility")
        self.min_covisibility = min_covisibility
        n = len(self.reader)
        self.table = load_partner_table(self.source, n, weights=self.sampling is PartnerSampling.WEIGHTED,
                                        min_covisibility=min_covisibility)
        column = {k: PairColumn(self.source, k) for k in stored if k in PAIR_KEYS}
        self.pairs, self.weight = column["pair"], column["weight"]
        self.distance, self.angle = column["distance"], column["angle"]
        self.covisibility: PairColumn | None = column.get("covisibility")
        self.rel_translation, self.rel_rotation = column["rel_translation"], column["rel_rotation"]
        self.offsets, self.view_pairs = column["view_offsets"], column["view_pairs"]
        self._same_pose: np.ndarray | None = None  # packed bits (P,), or empty when no pair shows one pose
        if self.sampling is PartnerSampling.LIGHT:
            self.load_same_pose()
        elif self.sampling is PartnerSampling.UNIFORM:
            _batched_draws_agree()  # checked once here, so forked workers inherit the answer
        self.source.close()  # reopened on first use, in this process or a worker
        self.meta = self.reader.meta()
        self.images = ViewImages(self.reader)
        self.allowed = np.ones(n, bool) if subset is None else np.asarray(subset, bool)
        if self.allowed.shape != (n,):
            raise ValueError(f"subset must be a boolean mask of the dataset's {n} views")
        self.index_map = np.flatnonzero(self.allowed)

    def __len__(self) -> int:
        return len(self.index_map)

    @property
    def positive(self) -> np.ndarray:
        """bool (P,) the positive pairs under this dataset's rule, read from the file (P bytes; not kept)."""
        out = np.empty(len(self.pairs), bool)
        for start, flags in positive_blocks(self.source, self.min_covisibility):
            out[start : start + len(flags)] = flags
        return out

    def set_epoch(self, epoch: int) -> None:
        """Draw other partners in the next epoch (call before iterating, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def positives_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The partners of a view and the rows of the pairs they come from: int64 (k,), (k,)."""
        rows, partners = self.table.rows_of(int(index))
        keep = self.table.is_positive(rows)
        keep &= self.allowed[partners]
        return partners[keep], rows[keep]

    def load_same_pose(self) -> None:
        """Read which pairs show one pose under two lights (distance 0, angle 0), P bits, for :meth:`light_variant`
        (done on first use otherwise; call it before a ``DataLoader`` forks its workers to do it once)."""
        if self._same_pose is not None:
            return
        bits = np.zeros((len(self.pairs) + 7) // 8, np.uint8)
        for start, block in iter_blocks(self.source, ("distance", "angle")):
            same = (block["distance"] == 0) & (block["angle"] < SAME_POSE_ANGLE)
            bits[start // 8 : start // 8 + (len(same) + 7) // 8] = np.packbits(same)
        self._same_pose = bits if bits.any() else bits[:0]

    def same_pose(self, rows: np.ndarray) -> np.ndarray:
        """bool (k,) whether each pair row shows one pose under two lights (distance 0, angle below 1e-6 rad)."""
        self.load_same_pose()
        if not len(self._same_pose):
            return np.zeros(len(rows), bool)
        return ((self._same_pose[rows >> 3] >> (7 - (rows & 7))) & 1).astype(bool)

    def light_variant(self, index: int) -> tuple[int, int]:
        """(view, pair row) of the same pose under another light this epoch (``ess render --light-variants``),
        drawn uniformly among the pose's renders; ``(index, -1)`` when it has none."""
        partners, rows = self.positives_of(index)
        same = self.same_pose(rows)
        partners, rows = partners[same], rows[same]
        if len(partners) == 0:
            return index, -1
        k = int(np.random.default_rng((self.seed, self.epoch, int(index), 1)).integers(len(rows)))
        return int(partners[k]), int(rows[k])

    def partner(self, index: int) -> tuple[int, float, int]:
        """(partner view, weight, pair row or -1 for the view itself) of view ``index`` this epoch."""
        if self.sampling is PartnerSampling.SELF:
            return index, 1.0, -1
        if self.sampling is PartnerSampling.LIGHT:
            view, row = self.light_variant(index)
            return view, 1.0, row
        partners, rows = self.positives_of(index)
        if len(partners) == 0:
            return index, 1.0, -1
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        if self.sampling is PartnerSampling.WEIGHTED:
            w = self.table.weight[rows].astype(np.float64)
            k = int(rng.choice(len(rows), p=w / w.sum())) if w.sum() > 0 else int(rng.integers(len(rows)))
            return int(partners[k]), float(self.table.weight[rows[k]]), int(rows[k])
        k = int(rng.integers(len(rows)))
        return int(partners[k]), 1.0, int(rows[k])

    def partners(self, views: list[int]) -> list[tuple[int, float, int]]:
        """``[self.partner(v) for v in views]``; under ``UNIFORM`` sampling the views' positives are gathered
        and their generators' draws made all at once (:func:`uniform_draws`), the same draws in a third of the
        time."""
        if self.sampling is not PartnerSampling.UNIFORM or len(views) < 2:
            return [self.partner(v) for v in views]
        item, rows, partners = self.table.rows_of_many(np.asarray(views, np.int64))
        keep = self.table.is_positive(rows) & self.allowed[partners]
        item, rows, partners = item[keep], rows[keep], partners[keep]
        counts = np.bincount(item, minlength=len(views))  # (B,) positives of each view
        pick = uniform_draws((self.seed, self.epoch), np.asarray(views, np.int64), np.maximum(counts, 1))
        at = np.cumsum(counts) - counts + np.asarray(pick, np.int64)  # (B,) the drawn positive of each view
        at = np.minimum(at, len(rows) - 1)  # views without positives point anywhere; they keep themselves
        chosen_partner, chosen_row = partners[at].tolist() if len(rows) else [], rows[at].tolist() if len(rows) else []
        return [(chosen_partner[i], 1.0, chosen_row[i]) if c else (v, 1.0, -1)
                for i, (v, c) in enumerate(zip(views, counts.tolist()))]

    def _view(self, index: int) -> Any:
        rgb = self.images.read("rgb", index)
        item: Any = rgb
        if self.with_depth:
            item = {"rgb": rgb, "depth": self.images.read("depth", index).astype(np.float32)}
        return self.transform(item) if self.transform is not None else item

    def __getitem__(self, item: int) -> tuple[Any, Any, np.float32, dict[str, Any]]:
        """Item ``item`` of the (subset of) views: anchored on view ``index_map[item]``: (view a, view b, weight,
        metadata: ``index_a/b``, ``scene``, ``room_a/b``, ``position_a/b`` float32 (3,) metres, ``rotation_a/b``
        float32 (4,), the pair's ``distance`` (m), ``angle`` (rad) and mean ``covisibility``)."""
        return self.__getitems__([item])[0]

    def __getitems__(self, items: list[int]) -> list[tuple[Any, Any, np.float32, dict[str, Any]]]:
        """``[self[i] for i in items]``, the pair fields read once per call: what ``DataLoader`` asks per batch."""
        n = len(self)
        anchors = []
        for item in items:
            item = int(item)
            if not 0 <= item < n:
                raise IndexError(item)
            anchors.append(int(self.index_map[item]))
        drawn = self.partners(anchors)
        partners = [d[0] for d in drawn]
        row = np.array([d[2] for d in drawn], np.int64)  # (B,) -1: the view itself
        paired = np.flatnonzero(row >= 0)
        fields = {"distance": np.zeros(len(row), np.float32), "angle": np.zeros(len(row), np.float32),
                  "covisibility": np.ones(len(row), np.float32)}
        for key in fields if len(paired) else ():
            if key != "covisibility":
                fields[key][paired] = self.source.rows(key, row[paired])
            elif self.covisibility is not None:
                fields[key][paired] = self.source.rows(key, row[paired]).mean(axis=1)
        m = self.meta
        a, b = np.array(anchors, np.int64), np.array(partners, np.int64)
        scene, room_a, room_b = m["scene"][a].tolist(), m["room"][a].tolist(), m["room"][b].tolist()
        dist, angle, covis = (fields[k].tolist() for k in ("distance", "angle", "covisibility"))
        out = []
        for k, (i, j) in enumerate(zip(anchors, partners)):
            metadata = {
                "index_a": i, "index_b": j, "scene": scene[k], "room_a": room_a[k], "room_b": room_b[k],
                "position_a": m["position"][i], "position_b": m["position"][j],
                "rotation_a": m["rotation"][i], "rotation_b": m["rotation"][j],
                "distance": dist[k], "angle": angle[k], "covisibility": covis[k],
            }
            out.append((self._view(i), self._view(j), np.float32(drawn[k][1]), metadata))
        return out


class ViewImages:
    """Images of a dataset's views by global index, each shard's h5py datasets opened once per process.

    The same reads as :meth:`envsim.store.reader.DatasetReader.read` without its per-call index checks and
    array conversions (a third of a small image's read time); pickling drops the handles.

    Args:
        reader: the dataset.
    """

    def __init__(self, reader: DatasetReader):
        self.folder = reader.folder
        self.files = [s["file"] for s in reader.shards]
        self.starts = [int(v) for v in reader.starts]  # first view of each shard, then the number of views
        self._open: dict[tuple[int, str], Any] = {}  # (shard, key) -> h5py dataset
        self._files: dict[int, Any] = {}  # shard -> h5py file
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _open={}, _files={})  # HDF5 handles do not cross processes

    def read(self, key: str, view: int) -> np.ndarray:
        """``key`` (``rgb``, ``depth``, ...) of global view ``view``."""
        if not 0 <= view < self.starts[-1]:
            raise IndexError(f"view index {view} out of range [0, {self.starts[-1]})")
        shard = bisect.bisect_right(self.starts, view) - 1
        ds = self._open.get((shard, key)) if self._pid == os.getpid() else None
        if ds is None:
            ds = self._dataset(shard, key)
        return ds[view - self.starts[shard]]

    def _dataset(self, shard: int, key: str) -> Any:
        import h5py

        if self._pid != os.getpid():  # forked into a worker: never reuse the parent's handles
            self._open, self._files, self._pid = {}, {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.folder / self.files[shard], "r")
        self._open[(shard, key)] = self._files[shard][key]
        return self._open[(shard, key)]

    def close(self) -> None:
        """Close this process's files (reopened on next use)."""
        for f in self._files.values() if self._pid == os.getpid() else ():
            f.close()
        self._open, self._files = {}, {}


def iter_batches(
    dataset: SpatialPairs, *, batch_size: int, rng: np.random.Generator, drop_last: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """Shuffled batches without torch: (views_a (B, ...), views_b (B, ...), weights (B,), metadata).

    Views are stacked with ``np.stack``, so the transform must return equally shaped arrays.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = rng.permutation(len(dataset))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        items = [dataset[int(i)] for i in idx]
        yield (
            np.stack([it[0] for it in items]),
            np.stack([it[1] for it in items]),
            np.array([it[2] for it in items], np.float32),
            [it[3] for it in items],
        )
