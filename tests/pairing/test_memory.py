"""The pairs held lean: ``SpatialPairs`` keeps a few bytes a pair and reads the rest on demand, ``ess pair``
builds the file dataset by dataset; both give exactly what the whole arrays gave.

Every check compares against a reference computed here from the whole pairs file (:func:`read_pairs`), with
the partner-draw rule of the loader written out again (one generator per (seed, epoch, view)).
"""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import LightingConfig, RenderConfig
from pairing import build as build_module
from pairing import loader as loader_module
from pairing import store as store_module
from pairing.build import PairConfig, build_pairs
from pairing.loader import PartnerSampling, SpatialPairs, uniform_draws
from pairing.store import PairColumn, PairRows, csr_by_view, positive_counts, read_pairs

SEEDS = (0, 1, 7, 2**40 + 3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two procedural houses, two lights per pose (same-pose pairs), pairs with covisibility."""
    out = tmp_path_factory.mktemp("memory") / "data"
    cfg = DatasetConfig(
        seed=2, shard_size=40, light_variants=2,
        render=RenderConfig(width=24, height=16, lighting=LightingConfig(jitter=True)),
        trajectory=TrajectoryConfig(views=30, views_per_trajectory=10),
    )
    render_dataset(resolve_sources(["procedural:2"]), config=cfg, out=out)
    build_pairs(out, config=PairConfig())
    return out


@pytest.fixture(scope="module")
def whole(dataset):
    return read_pairs(dataset / "pairs.h5")


def reference_partner(d: dict, positive: np.ndarray, allowed: np.ndarray, view: int, *, sampling: PartnerSampling,
                      seed: int, epoch: int) -> tuple[int, float, int]:
    """The loader's draw from the whole arrays: the view's positive rows in the file's CSR order, one
    generator per (seed, epoch, view)."""
    rows = d["view_pairs"][d["view_offsets"][view] : d["view_offsets"][view + 1]]
    rows = rows[positive[rows]]
    a, b = d["pair"][rows, 0], d["pair"][rows, 1]
    partners = np.where(a == view, b, a)
    inside = allowed[partners]
    partners, rows = partners[inside], rows[inside]
    if len(rows) == 0:
        return view, 1.0, -1
    rng = np.random.default_rng((seed, epoch, view))
    if sampling is PartnerSampling.WEIGHTED:
        w = d["weight"][rows].astype(np.float64)
        k = int(rng.choice(len(rows), p=w / w.sum())) if w.sum() > 0 else int(rng.integers(len(rows)))
        return int(partners[k]), float(d["weight"][rows[k]]), int(rows[k])
    k = int(rng.integers(len(rows)))
    return int(partners[k]), 1.0, int(rows[k])


@pytest.mark.parametrize("sampling", [PartnerSampling.UNIFORM, PartnerSampling.WEIGHTED])
@pytest.mark.parametrize("rule", ["file", "covisibility", "subset"])
def test_partners_equal_the_whole_arrays(dataset, whole, sampling, rule):
    n = whole["attrs"]["n_views"]
    subset = (np.arange(n) % 3 != 1) if rule == "subset" else None
    min_covis = 0.2 if rule == "covisibility" else None
    positive = whole["covisibility"].mean(axis=1) >= 0.2 if min_covis else whole["positive"].astype(bool)
    allowed = subset if subset is not None else np.ones(n, bool)
    assert 0 < positive.sum() < len(positive) or rule != "covisibility"
    for seed in SEEDS:
        ds = SpatialPairs(dataset, sampling=sampling, seed=seed, subset=subset, min_covisibility=min_covis)
        for epoch in (0, 3):
            ds.set_epoch(epoch)
            views = ds.index_map.tolist()
            want = [reference_partner(whole, positive, allowed, v, sampling=sampling, seed=seed, epoch=epoch)
                    for v in views]
            assert [ds.partner(v) for v in views] == want
            assert ds.partners(views) == want  # the batched draws
            items = ds.__getitems__(list(range(len(ds))))
            assert [(it[3]["index_a"], it[3]["index_b"], float(it[2])) for it in items] == [
                (v, w[0], w[1]) for v, w in zip(views, want)]


def test_light_variants_equal_the_whole_arrays(dataset, whole):
    same = (whole["distance"] == 0) & (whole["angle"] < 1e-6)
    assert same.any()
    ds = SpatialPairs(dataset, sampling=PartnerSampling.LIGHT, seed=5)
    positive = whole["positive"].astype(bool)
    for v in range(len(ds)):
        rows = whole["view_pairs"][whole["view_offsets"][v] : whole["view_offsets"][v + 1]]
        rows = rows[positive[rows] & same[rows]]
        partners = np.where(whole["pair"][rows, 0] == v, whole["pair"][rows, 1], whole["pair"][rows, 0])
        want = (v, -1)
        if len(rows):
            k = int(np.random.default_rng((5, 0, v, 1)).integers(len(rows)))
            want = (int(partners[k]), int(rows[k]))
        assert ds.light_variant(v) == want
        assert ds.partner(v) == (want[0], 1.0, want[1])


def test_on_demand_fields_equal_the_whole_arrays(dataset, whole):
    ds = SpatialPairs(dataset, seed=3)
    for name, key in (("pairs", "pair"), ("weight", "weight"), ("distance", "distance"), ("angle", "angle"),
                      ("covisibility", "covisibility"), ("rel_translation", "rel_translation"),
                      ("rel_rotation", "rel_rotation"), ("offsets", "view_offsets"), ("view_pairs", "view_pairs")):
        column, full = getattr(ds, name), whole[key]
        assert column.shape == full.shape and column.dtype == full.dtype
        assert np.array_equal(np.asarray(column), full)
        rows = np.array([len(full) - 1, 0, 5, 5, 3])
        assert np.array_equal(column[rows], full[rows])
        assert np.array_equal(column[7], full[7]) and np.array_equal(column[2:9], full[2:9])
        assert np.array_equal(column[1:20:3], full[1:20:3])
        if full.ndim == 2:
            assert np.array_equal(column[rows, 1], full[rows, 1]) and column[4, 0] == full[4, 0]
    assert np.array_equal(ds.positive, whole["positive"].astype(bool))
    for i in (0, 5, len(ds) - 1):
        meta = ds[i][3]
        _, _, row = ds.partner(meta["index_a"])
        if row >= 0:
            assert meta["distance"] == float(whole["distance"][row]) and meta["angle"] == float(whole["angle"][row])
            assert meta["covisibility"] == float(whole["covisibility"][row].mean())
        assert np.array_equal(meta["position_b"], ds.meta["position"][meta["index_b"]])
    with pytest.raises(IndexError):
        ds.pairs[len(whole["pair"])]


@pytest.mark.parametrize("sampling", [PartnerSampling.UNIFORM, PartnerSampling.WEIGHTED])
def test_the_tables_take_at_most_12_bytes_a_pair(dataset, whole, sampling):
    """Counted from the arrays themselves, offsets included, over the file's pairs (each counted once)."""
    t = SpatialPairs(dataset, sampling=sampling).table
    held = [t.up_start, t.up_delta, t.low_start, t.low_row, t.positive, t.weight]
    total = sum(a.nbytes for a in held if a is not None)
    assert total == t.nbytes
    assert total / len(whole["pair"]) <= 12.0
    assert t.bytes_per_pair() == total / len(whole["pair"])
    if sampling is PartnerSampling.UNIFORM:
        assert t.weight is None and t.positive.dtype == np.uint8
    else:
        assert t.positive is None and t.weight.dtype == np.float32


def test_the_tables_hold_no_whole_dataset(dataset, monkeypatch):
    """Built in row blocks: with blocks of 16 rows every read is at most 16 rows, and the tables are the same."""
    reads = []
    real = PairRows.block

    def block(self, key, start, stop):
        reads.append(stop - start)
        return real(self, key, start, stop)

    big = SpatialPairs(dataset, sampling=PartnerSampling.WEIGHTED).table
    monkeypatch.setattr(store_module, "BLOCK_ROWS", 16)
    monkeypatch.setattr(loader_module, "BLOCK_ROWS", 16)
    monkeypatch.setattr(PairRows, "block", block)
    small = SpatialPairs(dataset, sampling=PartnerSampling.WEIGHTED).table
    assert reads and max(reads) <= 16
    for name in ("up_start", "up_delta", "low_start", "low_row", "weight"):
        assert np.array_equal(getattr(big, name), getattr(small, name)), name


def test_a_pickled_or_forked_dataset_works_in_a_dataloader(dataset):
    from training.views import image_chw

    ds = SpatialPairs(dataset, seed=4, transform=image_chw)
    ds[0]  # open the files here first: workers must not reuse these handles
    expected = [ds[i] for i in range(len(ds))]
    again = pickle.loads(pickle.dumps(ds))
    for i, it in enumerate(expected):
        got = again[i]
        assert torch.equal(got[0], it[0]) and torch.equal(got[1], it[1]) and got[2] == it[2]
        assert got[3].keys() == it[3].keys() and all(np.array_equal(got[3][k], it[3][k]) for k in it[3])
    for context in ("fork", "spawn"):
        loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context=context)
        got = [b for b in loader]
        assert sum(len(b[0]) for b in got) == len(ds)
        views_a = torch.cat([b[0] for b in got])
        assert torch.equal(views_a, torch.stack([it[0] for it in expected]))
        assert torch.equal(torch.cat([b[3]["index_b"] for b in got]), torch.tensor([it[3]["index_b"] for it in expected]))


def test_batched_draws_equal_numpy():
    rng = np.random.default_rng(0)
    for trial in range(60):
        prefix = (int(rng.integers(0, 2**62)), int(rng.integers(0, 50))) if trial % 3 else (int(rng.integers(0, 9)),)
        last = rng.integers(0, 2**32, 40)
        counts = rng.integers(1, [2, 50, 2**20, 2**31 + 9][trial % 4], 40)  # the largest ranges force redraws
        want = [int(np.random.default_rng((*prefix, int(v))).integers(int(c))) for v, c in zip(last, counts)]
        assert uniform_draws(prefix, last, counts) == want
    with pytest.raises(ValueError):  # numpy's own refusal, as before
        uniform_draws((-1, 0), np.array([1, 2]), np.array([3, 3]))


def test_lean_csr_equals_the_lexsort(monkeypatch):
    rng = np.random.default_rng(1)
    n = 50
    a = rng.integers(0, n - 1, 400)
    pairs = np.unique(np.stack([a, a + rng.integers(1, 8, 400)], axis=1).clip(max=n - 1), axis=0)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    ends, rows = pairs.reshape(-1), np.repeat(np.arange(len(pairs)), 2)
    want = rows[np.lexsort((rows, ends))]
    for block in (1 << 20, 7):
        monkeypatch.setattr(store_module, "BLOCK_ROWS", block)
        offsets, got = csr_by_view(pairs, n)
        assert np.array_equal(got, want) and offsets[-1] == 2 * len(pairs)
    shuffled = pairs[rng.permutation(len(pairs))]  # not the file's order: the lexsort path
    ends, rows = shuffled.reshape(-1), np.repeat(np.arange(len(shuffled)), 2)
    assert np.array_equal(csr_by_view(shuffled, n)[1], rows[np.lexsort((rows, ends))])


def test_building_in_small_blocks_gives_the_same_bytes(dataset, tmp_path, monkeypatch):
    """Covisibility, relative poses and the CSR computed a few pairs at a time: the same file, byte for byte."""
    monkeypatch.setattr(build_module, "code_version", lambda: "pinned")
    first = build_pairs(dataset, config=PairConfig(), out=tmp_path / "a.h5")
    monkeypatch.setattr(build_module, "COVISIBILITY_BLOCK", 5)
    monkeypatch.setattr(build_module, "RELATIVE_POSE_BLOCK", 3)
    monkeypatch.setattr(store_module, "BLOCK_ROWS", 4)
    second = build_pairs(dataset, config=PairConfig(), out=tmp_path / "b.h5")
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_counts_and_positive_table_read_in_blocks(dataset, whole):
    from pairing.build import positives_per_view
    from training.positives import PositiveTable

    n_pairs, n_positive, per_view = positive_counts(dataset / "pairs.h5")
    assert (n_pairs, n_positive) == (len(whole["pair"]), int(whole["positive"].sum()))
    assert np.array_equal(per_view, positives_per_view(whole))
    ds = SpatialPairs(dataset)
    scene = ds.meta["scene"]
    lean = PositiveTable.from_pairs_file({"pair": ds.pairs, "weight": ds.weight, "distance": ds.distance,
                                          "angle": ds.angle}, ds.positive, scene)
    full = PositiveTable.from_pairs_file(whole, whole["positive"].astype(bool), scene)
    for name in ("codes", "weight", "same_pose"):
        assert torch.equal(getattr(lean, name), getattr(full, name))
    assert bool(full.same_pose.any())


def test_pair_rows_cache_what_they_decoded(tmp_path, monkeypatch):
    from pairing.store import write_pairs

    rng = np.random.default_rng(0)
    arrays = {"pair": np.sort(rng.integers(0, 900, (5000, 2)), axis=1), "rel_rotation": rng.random((5000, 4), np.float32)}
    write_pairs(tmp_path / "p.h5", arrays, {"n_views": 900})  # > 1024 rows: chunked, several chunks
    reads = []
    real = PairRows.block
    monkeypatch.setattr(PairRows, "block", lambda self, key, a, b: reads.append((key, a, b)) or real(self, key, a, b))
    for cache, decoded in ((32 << 20, 1), (1, 2)):  # chunk 0 kept / dropped between two reads of row 3
        rows = PairRows(tmp_path / "p.h5", cache_bytes=cache)
        column = PairColumn(rows, "rel_rotation", dtype=np.float64)
        reads.clear()
        assert column.dtype == np.float64 and column[3].dtype == np.float64
        np.testing.assert_array_equal(column[np.array([4, 3])], arrays["rel_rotation"][[4, 3]].astype(np.float64))
        np.testing.assert_array_equal(column[4999], arrays["rel_rotation"][4999])
        np.testing.assert_array_equal(column[3], arrays["rel_rotation"][3])
        assert sum(1 for _, a, _ in reads if a == 0) == decoded and max(b - a for _, a, b in reads) < 5000
        assert "pair" in rows and "nope" not in rows
        rows.close()


def test_scenes_whose_views_interleave_keep_the_file_order(tmp_path):
    """Pairs are built scene by scene; when scenes interleave in the view order, the rows still come out
    sorted by (a, b), the pairs and weights those of all candidates of a scene within the radius."""
    import h5py

    from benchmarks.perf.pairs import write_dataset
    from envsim.store.reader import DatasetReader
    from pairing.index import radius_pairs
    from pairing.similarity import SimilarityConfig, pair_geometry, weighted_similarity

    folder = tmp_path / "mixed"
    write_dataset(folder, 80, views_per_scene=80, seed=3)
    with h5py.File(folder / "shard-00000.h5", "r+") as f:
        f["scene"][...] = np.arange(80) % 2  # two scenes, alternate views
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, scene_names=["even", "odd"])))
    build_pairs(folder, config=PairConfig(compute_covisibility=False))
    d = read_pairs(folder / "pairs.h5")
    meta = DatasetReader(folder).meta()
    position, rotation = meta["position"].astype(np.float64), meta["rotation"].astype(np.float64)
    candidates = radius_pairs(position, meta["scene"], radius=1.0)
    distance, angle = pair_geometry(position, rotation, candidates)
    weight = weighted_similarity(distance, angle, SimilarityConfig())
    keep = weight > 0  # the distance rule's positives have weight > 0 too
    assert len(d["pair"]) > 20 and np.array_equal(d["pair"], candidates[keep])
    assert np.array_equal(d["weight"], weight[keep])
    assert np.array_equal(d["view_pairs"], csr_by_view(d["pair"], 80)[1])


@pytest.mark.parametrize("threads", [1, 3])
def test_deflated_chunks_are_hdf5s_own_bytes(tmp_path, threads):
    """write_deflated (chunks compressed on several threads, written directly) gives the file h5py writes
    itself with shuffle + gzip: 1-D and multi-dimensional chunks, edge chunks, 1- to 8-byte items, bool."""
    import h5py

    from pairing.store import write_deflated

    rng = np.random.default_rng(3)
    arrays = {
        "ids": rng.integers(0, 5000, 70_001).astype(np.int64),
        "pair": rng.integers(0, 2**31, (33_333, 2)).astype(np.int32),
        "rot": rng.random((9_001, 3, 3)).astype(np.float16),
        "flag": rng.random(20_000) < 0.3,
        "label": rng.integers(0, 6, 12_345).astype(np.int8),
    }
    files = {}
    for how in ("h5py", "ours"):
        path = tmp_path / f"{how}.h5"
        with h5py.File(path, "w", libver="v110", track_order=True) as f:
            for key, value in arrays.items():
                kw = {"compression": "gzip", "compression_opts": 1, "shuffle": True, "chunks": True, "track_times": False}
                if how == "h5py":
                    f.create_dataset(key, data=value, **kw)
                else:
                    write_deflated(f.create_dataset(key, shape=value.shape, dtype=value.dtype, **kw), value,
                                   threads=threads, window=5)
        files[how] = hashlib.sha256(path.read_bytes()).hexdigest()
        with h5py.File(path) as f:
            for key, value in arrays.items():
                np.testing.assert_array_equal(f[key][()], value)
    assert files["ours"] == files["h5py"]
