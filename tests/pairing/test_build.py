"""``ess pair`` end to end on a small rendered dataset: pairs, labels, provenance, loader."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from envsim.camera import quat_to_matrix
from envsim.job import DatasetConfig, render_dataset, resolve_sources
from envsim.nav.trajectory import TrajectoryConfig
from envsim.render.renderer import RenderConfig
from ess.main import main
from pairing.build import PairConfig, PositiveRule, build_pairs, positives_per_view
from pairing.loader import PartnerSampling, SpatialPairs, iter_batches
from pairing.similarity import SimilarityConfig
from pairing.store import read_pairs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs") / "data"
    cfg = DatasetConfig(
        seed=1,
        shard_size=25,
        render=RenderConfig(width=32, height=24),
        trajectory=TrajectoryConfig(views=30, views_per_trajectory=15),
    )
    render_dataset(resolve_sources(["procedural:2"]), config=cfg, out=out)
    return out


def test_pairs_file_contents(dataset, tmp_path):
    from pairing.pretext import DepthOrderConfig

    small_regions = DepthOrderConfig(region_size=4)  # the test images are 32x24
    path = build_pairs(dataset, config=PairConfig(depth_order=small_regions), out=tmp_path / "p.h5")
    d = read_pairs(path)
    pair, n = d["pair"], d["attrs"]["n_views"]
    assert n == 60 and len(pair) > 30
    assert np.all(pair[:, 0] < pair[:, 1])
    from envsim.store.reader import DatasetReader

    meta = DatasetReader(dataset).meta()
    assert np.all(meta["scene"][pair[:, 0]] == meta["scene"][pair[:, 1]])
    dist = np.linalg.norm(meta["position"][pair[:, 0]] - meta["position"][pair[:, 1]], axis=1)
    np.testing.assert_allclose(d["distance"], dist, atol=1e-5)
    assert dist.max() <= 1.0 + 1e-6
    pos = d["positive"].astype(bool)
    assert np.all(d["angle"][pos] <= np.radians(45) + 1e-6)  # ESS-MB gate
    assert np.all((d["weight"] >= 0) & (d["weight"] <= 1))
    assert np.all((d["covisibility"] >= 0) & (d["covisibility"] <= 1))
    # Relative pose: b's pose = a's pose composed with the stored relative pose.
    a, b = pair[:, 0], pair[:, 1]
    rel = np.zeros((len(pair), 4, 4))
    rel[:, :3, :3] = quat_to_matrix(d["rel_rotation"])
    rel[:, :3, 3] = d["rel_translation"]
    rel[:, 3, 3] = 1
    np.testing.assert_allclose(meta["pose"][a].astype(np.float64) @ rel, meta["pose"][b], atol=1e-4)
    # CSR lists every pair of a view exactly once.
    for v in range(n):
        rows = d["view_pairs"][d["view_offsets"][v] : d["view_offsets"][v + 1]]
        expected = np.flatnonzero((pair[:, 0] == v) | (pair[:, 1] == v))
        assert sorted(rows.tolist()) == expected.tolist()
    assert positives_per_view(d).sum() == 2 * pos.sum()
    # Pretext labels exist for every view and are in range.
    assert d["depth_order_label"].max() < 6 and (d["depth_order_label"] >= 0).mean() > 0.3
    assert d["jigsaw_label"].max() < len(d["jigsaw_permutations"])
    assert np.all(d["crop_boxes"][:, :, 2] > d["crop_boxes"][:, :, 0])


def test_same_inputs_same_bytes_and_up_to_date(dataset, tmp_path):
    a = build_pairs(dataset, config=PairConfig(seed=3), out=tmp_path / "a.h5")
    b = build_pairs(dataset, config=PairConfig(seed=3), out=tmp_path / "b.h5")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    mtime = a.stat().st_mtime_ns
    build_pairs(dataset, config=PairConfig(seed=3), out=a)  # same settings: kept as it is
    assert a.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="other settings"):
        build_pairs(dataset, config=PairConfig(seed=4), out=a)


def test_rules_nest(dataset, tmp_path):
    sim = SimilarityConfig(radius=1.5)
    dist = read_pairs(build_pairs(dataset, config=PairConfig(similarity=sim), out=tmp_path / "d.h5"))
    both = read_pairs(build_pairs(dataset, config=PairConfig(similarity=sim, rule=PositiveRule.BOTH), out=tmp_path / "b.h5"))
    cov = read_pairs(build_pairs(dataset, config=PairConfig(similarity=sim, rule=PositiveRule.COVISIBILITY), out=tmp_path / "c.h5"))
    key = lambda d: {tuple(p) for p in d["pair"][d["positive"].astype(bool)]}  # noqa: E731
    assert key(both) == key(dist) & key(cov)
    assert np.all(cov["covisibility"][cov["positive"].astype(bool)].mean(axis=1) >= 0.3)
    with pytest.raises(ValueError, match="needs covisibility"):
        PairConfig(rule=PositiveRule.BOTH, compute_covisibility=False)


@pytest.mark.parametrize("sampling", [PartnerSampling.UNIFORM, PartnerSampling.WEIGHTED])
def test_loader_partners_are_positives(dataset, sampling):
    build_pairs(dataset, config=PairConfig(), out=dataset / "pairs.h5")
    ds = SpatialPairs(dataset, sampling=sampling, with_depth=True, seed=5)
    d = read_pairs(dataset / "pairs.h5")
    positives = {tuple(p) for p in d["pair"][d["positive"].astype(bool)]}
    lookup = {tuple(p): r for r, p in enumerate(d["pair"])}
    for i in range(len(ds)):
        va, vb, w, meta = ds[i]
        j = meta["index_b"]
        assert va["rgb"].shape == (24, 32, 3) and vb["depth"].dtype == np.float32
        if j == i:
            assert w == 1.0 and positives_per_view(d)[i] == 0
        else:
            key = (min(i, j), max(i, j))
            assert key in positives
            expected = d["weight"][lookup[key]] if sampling is PartnerSampling.WEIGHTED else 1.0
            assert w == pytest.approx(expected)
    again = SpatialPairs(dataset, sampling=sampling, seed=5)
    assert [again[i][3]["index_b"] for i in range(len(ds))] == [ds[i][3]["index_b"] for i in range(len(ds))]


def test_loader_without_torch_batches(dataset):
    build_pairs(dataset, config=PairConfig(), out=dataset / "pairs.h5")
    ds = SpatialPairs(dataset, transform=lambda rgb: rgb.astype(np.float32) / 255.0)
    batches = list(iter_batches(ds, batch_size=16, rng=np.random.default_rng(0)))
    assert [len(b[2]) for b in batches] == [16, 16, 16, 12]
    assert batches[0][0].shape == (16, 24, 32, 3) and batches[0][0].dtype == np.float32


def test_torch_dataloader_with_workers_matches_in_process(dataset):
    torch = pytest.importorskip("torch")
    build_pairs(dataset, config=PairConfig(), out=dataset / "pairs.h5")

    def to_tensor(rgb):
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0

    ds = SpatialPairs(dataset, sampling=PartnerSampling.WEIGHTED, transform=to_tensor, seed=2)
    loaded = []
    for workers in (0, 2):
        dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False, num_workers=workers)
        batches = list(dl)
        loaded.append((torch.cat([b[1] for b in batches]), torch.cat([b[3]["index_b"] for b in batches])))
        assert batches[0][0].shape == (8, 3, 24, 32)
    assert torch.equal(loaded[0][0], loaded[1][0]) and torch.equal(loaded[0][1], loaded[1][1])


def test_cli_pair_inspect_preview(dataset, tmp_path, capsys):
    assert main(["pair", str(dataset), "--force", "--no-progress"]) == 0
    assert "positives per view" in capsys.readouterr().out
    assert main(["inspect", str(dataset)]) == 0
    assert "positives per view: min" in capsys.readouterr().out
    assert main(["preview", str(dataset), "--pairs", "--out", str(tmp_path / "pv")]) == 0
    assert (tmp_path / "pv" / "pairs.png").is_file()
    capsys.readouterr()
    assert main(["pair", str(tmp_path)]) == 2
    assert "not a dataset folder" in capsys.readouterr().err
    assert main(["pair", str(dataset), "--positive", "both", "--no-covisibility"]) == 2


def test_light_partner_is_the_same_pose(tmp_path):
    from envsim.render.renderer import LightingConfig

    out = tmp_path / "lv"
    cfg = DatasetConfig(
        light_variants=2,
        render=RenderConfig(width=16, height=12, lighting=LightingConfig(jitter=True)),
        trajectory=TrajectoryConfig(views=6, views_per_trajectory=6),
    )
    render_dataset(resolve_sources(["procedural:1"]), config=cfg, out=out)
    build_pairs(out, config=PairConfig(compute_covisibility=False))
    ds = SpatialPairs(out, sampling=PartnerSampling.LIGHT)
    for i in range(len(ds)):
        j = ds[i][3]["index_b"]
        assert j == (i ^ 1)  # variants are consecutive: 0-1, 2-3, ...
    assert all(SpatialPairs(out, sampling=PartnerSampling.SELF)[i][3]["index_b"] == i for i in range(len(ds)))


def test_subset_keeps_partners_inside(dataset):
    build_pairs(dataset, config=PairConfig(), out=dataset / "pairs.h5")
    mask = np.zeros(60, bool)
    mask[::2] = True
    ds = SpatialPairs(dataset, subset=mask)
    assert len(ds) == 30
    for k in range(len(ds)):
        meta = ds[k][3]
        assert meta["index_a"] == 2 * k and mask[meta["index_b"]]


def test_a_second_ess_pair_on_the_same_folder_is_refused(dataset, capsys):
    from envsim.lock import FolderLock
    from pairing.build import PAIR_LOCK_NAME

    with FolderLock(dataset, PAIR_LOCK_NAME, what="ess pair", advice="wait for it to finish"):
        assert main(["pair", str(dataset), "--no-progress", "--force"]) == 2
    assert "another ess pair" in capsys.readouterr().err
    assert not (dataset / PAIR_LOCK_NAME).exists()
