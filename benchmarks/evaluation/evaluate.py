"""``ess bench``: room classification and spatial localization of a trained encoder, familiar vs unfamiliar.

Reference: ESS (arXiv 2401.15120) evaluates representations on room classification and spatial
localization in environments seen in training ("familiar") and held-out ones ("unfamiliar"). Here:

- **Views** come from :func:`envsim.store.splits.view_splits`: probes are trained on ``splits.train`` views;
  the familiar test views are ``splits.familiar`` (held-out trajectories of training scenes), the
  unfamiliar ones ``splits.unfamiliar`` (all views of held-out scenes).
- **Representations**: ``trained`` (the run's frozen backbone), ``random-init`` (the same architecture at
  its random initialisation, seeded by default with the run's training seed: the very network the run
  started from, so that over several training seeds the floor has several initialisations too) and
  ``pixels`` (the image averaged down to ``pixels_size`` x ``pixels_size``, flattened): the last two are
  floors a trained encoder is read against.
- **Warnings** (logged and listed in the report): the probes' training views hold fewer than two room
  classes, a test split holds fewer than two, or a room class of the training views has no test view in a
  setting: the room accuracy then says little (e.g. 100 % on a split that is all bedroom).
- **Room classification**: a linear probe (:func:`benchmarks.evaluation.probes.linear_probe`) and a weighted k-NN
  (:func:`benchmarks.evaluation.probes.knn_classify`) trained on the labelled training views; views whose room is
  unknown (-1) are left out of training and of scoring. ``room_majority_top1`` (the most frequent training
  room everywhere) is the chance floor.
- **Localization**: :mod:`benchmarks.evaluation.localization` on the held-out trajectories of each side.
- **Pretext probes** (when the dataset has a ``pairs.h5``; otherwise their keys are None and
  ``report["pretext"]["skipped"]`` says why): SP crop position/scale, jigsaw permutation and relative pose of
  spatial partners, read from the stored pretext labels (:mod:`benchmarks.evaluation.pretext`).

Invariants checked on every run (a failure raises, it is never just logged): the encoder's parameters and
buffers are unchanged by the evaluation (:func:`training.encoder.state_digest` before and after); no view
of an unfamiliar scene is in the probes' training set; no unfamiliar scene was a training scene of the run
(when the run recorded its splits). Every report states its split sizes, seeds, checkpoint and dataset
hashes, code version and machine.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmarks.evaluation.features import Derived, FeatureSettings, embed_views
from benchmarks.evaluation.localization import localization_errors, localization_summary
from benchmarks.evaluation.metrics import confusion_matrix, per_class_accuracy, top1_accuracy
from benchmarks.evaluation.pretext import (
    TRAIN,
    PretextLabelsError,
    PretextPlan,
    load_pretext_labels,
    plan_pretext,
    pretext_images,
    pretext_metrics,
    skipped_metrics,
)
from benchmarks.evaluation.probes import knn_classify, linear_probe
from benchmarks.evaluation.report import REPORT_FORMAT
from envsim.provenance import to_jsonable

if TYPE_CHECKING:
    from envsim.store.reader import DatasetReader
    from envsim.store.splits import ViewSplits

log = logging.getLogger(__name__)

REPRESENTATIONS = ("trained", "random-init", "pixels")
SETTINGS = ("familiar", "unfamiliar")
DETERMINING_FIELDS = ("knn_k", "probe_epochs", "seed", "random_init_seed", "pixels_size", "image_size", "ridge_alpha",
                      "pretext_views")


class LeakageError(RuntimeError):
    """The data would let a probe (or the encoder itself) see an unfamiliar scene before its test."""


@dataclass(frozen=True)
class BenchConfig:
    """Settings of ``ess bench``.

    Attributes:
        knn_k: neighbours of the k-NN classifier, >= 1.
        probe_epochs: L-BFGS iterations of the linear probe, >= 1.
        seed: seeds the linear probe's initialisation and the chance baseline (>= 0; 0 is a valid seed).
        random_init_seed: seed of the random-init encoder; None = the run's training seed (the network
            the run started from).
        pixels_size: side in pixels of the raw-pixel baseline's downsampled image, >= 1.
        batch_size: images per encoder forward pass, >= 1.
        device: torch device of the encoders ("cpu", "cuda", "cuda:1", ...).
        image_size: side in pixels the encoders see; None = the run's training image size when recorded,
            else the dataset's width.
        ridge_alpha: penalty of the position regression readout, >= 0 (the SP and pose probes choose theirs
            by leave-one-out error on the training views).
        pretext_views: most views per split (train, familiar, unfamiliar; a sample drawn with ``seed``)
            whose crops and jigsaw tiles are embedded for the SP and jigsaw probes, >= 1; None = every view.
            Each costs 2 + 9 encoder passes.
    """

    knn_k: int = 20
    probe_epochs: int = 100
    seed: int = 0
    random_init_seed: int | None = None
    pixels_size: int = 16
    batch_size: int = 256
    device: str = "cpu"
    image_size: int | None = None
    ridge_alpha: float = 1.0
    pretext_views: int | None = 1000

    def __post_init__(self) -> None:
        for name in ("knn_k", "probe_epochs", "pixels_size", "batch_size"):
            if not _whole(getattr(self, name), 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if not _whole(self.seed, 0):
            raise ValueError(f"seed must be a whole number >= 0, got {self.seed!r}")
        if self.random_init_seed is not None and not _whole(self.random_init_seed, 0):
            raise ValueError(f"random_init_seed must be None (the run's seed) or a whole number >= 0, "
                             f"got {self.random_init_seed!r}")
        if self.image_size is not None and not _whole(self.image_size, 1):
            raise ValueError(f"image_size must be None (automatic) or whole pixels >= 1, got {self.image_size!r}")
        if self.pretext_views is not None and not _whole(self.pretext_views, 1):
            raise ValueError(f"pretext_views must be None (every view) or a whole number >= 1, got {self.pretext_views!r}")
        alpha = self.ridge_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"ridge_alpha must be a finite number >= 0, got {alpha!r}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device must be a torch device (cpu, cuda, cuda:1, ...), got {self.device!r}") from None


def _whole(value: Any, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum


def _scene_ids(names: list[str], wanted) -> np.ndarray:
    return np.array([names.index(n) for n in wanted], np.int64)


def check_no_leakage(
    splits, meta: dict[str, np.ndarray], scene_names: list[str], record: dict[str, Any]
) -> dict[str, Any]:
    """Check that probes train on no unfamiliar view and that the run never trained on an unfamiliar scene.

    Args:
        splits: the dataset's :class:`envsim.store.splits.ViewSplits`.
        meta: per-view metadata (``scene``).
        scene_names: the dataset's scene names.
        record: the encoder's record (``dataset.splits.train_scenes`` when the run recorded it).

    Returns:
        The checks' outcomes for the report.

    Raises:
        LeakageError: either check fails.
    """
    test_ids = _scene_ids(scene_names, splits.test_scenes)
    leaked = splits.train & np.isin(meta["scene"], test_ids)
    if np.any(leaked) or np.any(splits.train & (splits.unfamiliar | splits.familiar)):
        raise LeakageError(
            f"{int(leaked.sum())} view(s) of unfamiliar scenes (or held-out views) are in the probes' training "
            "set; the splits are inconsistent"
        )
    trained_scenes = ((record.get("dataset") or {}).get("splits") or {}).get("train_scenes")
    if trained_scenes is not None:
        seen = sorted(set(trained_scenes) & set(splits.test_scenes))
        if seen:
            raise LeakageError(
                f"the run was trained on scene(s) {seen[:5]} that this dataset holds out as unfamiliar; "
                "evaluate on a dataset whose held-out scenes the run never saw"
            )
    return {
        "probe_train_has_no_unfamiliar_views": True,
        "run_never_trained_on_unfamiliar_scenes": None if trained_scenes is None else True,
    }


def room_warnings(room: np.ndarray, train: np.ndarray, tests: dict[str, np.ndarray], room_names: list[str]) -> list[str]:
    """Why a room accuracy would say little: too few classes in a split, or a class without test views.

    Args:
        room: int (N,) room of every view (-1 unknown).
        train: bool (N,) the probes' training views.
        tests: setting -> bool (N,) its test views.
        room_names: class names.

    Returns:
        One sentence per problem (empty when there is none).
    """
    def names(ids) -> str:
        return ", ".join(room_names[i] for i in sorted(ids)) or "none"

    out = []
    seen = set(np.unique(room[train & (room >= 0)]).tolist())
    if len(seen) < 2:
        out.append(f"the probes' training views hold {len(seen)} room class(es) ({names(seen)}): room "
                   "classification is trivial; render more views per scene or more trajectories")
    for setting, mask in tests.items():
        test = set(np.unique(room[mask & (room >= 0)]).tolist())
        if not np.any(mask):
            continue
        if len(test) < 2:
            out.append(f"the {setting} test views hold {len(test)} room class(es) ({names(test)}): its room "
                       "accuracy measures one class only")
        missing = seen - test
        if missing and len(test) >= 2:
            out.append(f"room class(es) {names(missing)} have training views but no {setting} test view")
    return out


def _room_metrics(feats: np.ndarray, room: np.ndarray, train: np.ndarray, tests: dict[str, np.ndarray],
                  room_names: list[str], config: BenchConfig) -> dict[str, dict[str, Any]]:
    """Room classification results per setting (train on ``train`` rows; score each test mask's labelled rows)."""
    n_classes = len(room_names)
    labelled_train = train & (room >= 0)
    out: dict[str, dict[str, Any]] = {}
    if not np.any(labelled_train) or n_classes == 0:
        for setting, mask in tests.items():
            out[setting] = {
                "room_test_views": int(np.sum(mask & (room >= 0))), "room_linear_top1": None, "room_knn_top1": None,
                "room_majority_top1": None, "room_per_class": {}, "room_confusion": [],
            }
        return out
    test_rows = {setting: np.flatnonzero(mask & (room >= 0)) for setting, mask in tests.items()}
    all_test = np.concatenate(list(test_rows.values()))
    x_train, y_train = feats[labelled_train], room[labelled_train]
    linear = linear_probe(x_train, y_train, feats[all_test], n_classes, seed=config.seed, epochs=config.probe_epochs)
    knn = knn_classify(x_train, y_train, feats[all_test], k=config.knn_k)
    majority = int(np.bincount(y_train, minlength=n_classes).argmax())
    start = 0
    for setting, rows in test_rows.items():
        sl = slice(start, start + rows.size)
        start += rows.size
        labels = room[rows]
        per_class = per_class_accuracy(linear[sl], labels, n_classes)
        out[setting] = {
            "room_test_views": int(rows.size),
            "room_linear_top1": top1_accuracy(linear[sl], labels),
            "room_knn_top1": top1_accuracy(knn[sl], labels),
            "room_majority_top1": top1_accuracy(np.full(rows.size, majority), labels),
            "room_per_class": {name: float(per_class[i]) for i, name in enumerate(room_names)},
            "room_confusion": confusion_matrix(linear[sl], labels, n_classes).tolist(),
        }
    return out


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    config: BenchConfig,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a training run's frozen encoder (and the random-init and raw-pixel floors) on a dataset.

    Args:
        run: run folder holding ``encoder.pt`` (or the file itself).
        data: rendered dataset folder.
        config: bench settings.
        progress: called with (views embedded so far, views to embed) after every chunk.

    Returns:
        The report (JSON-ready; NaN is written as None): provenance keys (``run``, ``checkpoint``,
        ``method``, ``arch``, ``training_seed``, ``seeds``, ``bench_config``, ``image_size``, ``dataset``,
        ``splits``, ``checks``, ``code_version``, ``machine``, ``created_utc``), ``pretext`` (the pretext
        probes' labels file, sample sizes and checks, or ``skipped`` with the reason) and
        ``results[representation][setting][metric]``.

    Raises:
        FileNotFoundError: no encoder in ``run``.
        ValueError: ``data`` is not a finished dataset.
        LeakageError: an unfamiliar scene leaks into probe training or was trained on, or a pretext probe's
            sample leaves its split.
        RuntimeError: the evaluation changed an encoder (a bug: evaluation must be read-only).
    """
    from envsim.store.reader import DatasetReader
    from envsim.store.splits import view_splits
    from training.encoder import load_encoder, random_encoder, state_digest

    reader = DatasetReader(data)
    meta = reader.meta()
    splits = view_splits(reader.manifest, meta)
    model, record = load_encoder(run, device=config.device)
    checks = check_no_leakage(splits, meta, reader.scene_names, record)
    manifest_sha = reader.manifest_sha256()
    trained_on = _trained_on(record, manifest_sha)
    size = config.image_size or (record.get("config") or {}).get("image_size") or reader.width
    init_seed = config.random_init_seed if config.random_init_seed is not None else int(record.get("seed") or 0)
    models = {"trained": model, "random-init": random_encoder(record["arch"], seed=init_seed, device=config.device)}
    before = {name: state_digest(m) for name, m in models.items()}
    tests = {"familiar": splits.familiar, "unfamiliar": splits.unfamiliar}
    plan, pretext = _pretext_plan(reader, manifest_sha, {TRAIN: splits.train, **tests}, config)

    used = splits.train | splits.familiar | splits.unfamiliar
    views = np.flatnonzero(used)  # embed only views some protocol uses
    settings = FeatureSettings(size=size, batch_size=config.batch_size, device=config.device, pixels_size=config.pixels_size)
    derived = None if plan is None else Derived(plan.views, lambda rgb, v: pretext_images(rgb, v, labels=plan.labels, size=size))
    try:
        feats_used, feats_parts = embed_views(reader, views, models, settings=settings, derived=derived, progress=progress)
    finally:
        reader.close()  # metadata stays cached; no image is read after this
    _check_unchanged(models, before, "while embedding")

    room = meta["room"].astype(np.int64)
    warnings = room_warnings(room, splits.train, tests, reader.room_names)
    for text in warnings:
        log.warning("%s", text)
    queries = {setting: splits.query & mask for setting, mask in tests.items()}
    results, feature_dims = _probe_results(feats_used, views, len(reader), meta, splits, tests=tests, queries=queries,
                                           room_names=reader.room_names, config=config)
    _add_pretext(results, feats_used, feats_parts, views, len(reader), plan, config)
    _check_unchanged(models, before, "during the probes")
    checks.update({"encoder_unchanged": True, "random_encoder_unchanged": True, "encoder_digest": before["trained"]})

    summary = splits.summary()
    summary["room_train_views"] = int(np.sum(splits.train & (room >= 0)))
    summary["room_test_views"] = {s: int(np.sum(tests[s] & (room >= 0))) for s in SETTINGS}
    summary["queries"] = {s: int(queries[s].sum()) for s in SETTINGS}
    report = _report(run, record, config, reader=reader, size=size, init_seed=init_seed, feature_dims=feature_dims,
                     manifest_sha=manifest_sha, trained_on=trained_on, summary=summary, warnings=warnings,
                     checks=checks, results=results)
    report["pretext"] = pretext
    return to_jsonable(report, finite=True)


def _trained_on(record: dict[str, Any], manifest_sha: str) -> str | None:
    """The manifest SHA-256 the run was trained on (None: not recorded); a warning when it is not ``manifest_sha``."""
    trained_on = (record.get("dataset") or {}).get("manifest_sha256")
    if trained_on is not None and trained_on != manifest_sha:
        log.warning(
            "the run was trained on dataset %s…, benchmarking on %s… (another rendering or another dataset)",
            trained_on[:12], manifest_sha[:12],
        )
    return trained_on


def _pretext_plan(reader: DatasetReader, manifest_sha: str, masks: dict[str, np.ndarray],
                  config: BenchConfig) -> tuple[PretextPlan | None, dict[str, Any]]:
    """The pretext probes' plan and its summary for the report, or (None, the reason they are skipped)."""
    try:
        labels = load_pretext_labels(reader.folder, manifest_sha256=manifest_sha, n_views=len(reader))
    except PretextLabelsError as exc:
        log.warning("pretext probes skipped: %s", exc)
        return None, {"skipped": str(exc)}
    plan = plan_pretext(labels, masks, max_views=config.pretext_views, seed=config.seed)
    for split, mask in masks.items():  # the probes train on training views only and never mix splits
        pairs = plan.pairs[split]
        if not (np.all(mask[plan.samples[split]]) and np.all(mask[pairs.view]) and np.all(mask[pairs.partner])):
            raise LeakageError(f"the pretext probes' {split} views or pairs leave the {split} split; the plan is inconsistent")
    return plan, {**plan.summary(), "checks": {"samples_and_pairs_inside_their_split": True}}


def _add_pretext(results: dict[str, dict[str, dict[str, Any]]], feats_used: dict[str, np.ndarray],
                 feats_parts: dict[str, np.ndarray], views: np.ndarray, n: int, plan: PretextPlan | None,
                 config: BenchConfig) -> None:
    """Add the pretext probes' metrics (:data:`benchmarks.evaluation.pretext.PRETEXT_KEYS`) to ``results``,
    in place; every value None when ``plan`` is None (no labels)."""
    for rep in REPRESENTATIONS:
        if plan is None:
            metrics = {setting: skipped_metrics() for setting in SETTINGS}
        else:
            feats = np.zeros((n, feats_used[rep].shape[1]), np.float32)
            feats[views] = feats_used[rep]
            metrics = pretext_metrics(feats, feats_parts[rep], plan, seed=config.seed, epochs=config.probe_epochs)
        for setting in SETTINGS:
            results[rep][setting].update(metrics[setting])


def _check_unchanged(models: dict[str, torch.nn.Module], before: dict[str, str], stage: str) -> None:
    """Raise unless every model's state digest still equals ``before`` (``stage`` says when, for the message).

    Raises:
        RuntimeError: an encoder's parameters or buffers changed.
    """
    from training.encoder import state_digest

    for name, m in models.items():
        if state_digest(m) != before[name]:
            raise RuntimeError(
                f"the {name} encoder's parameters or buffers changed {stage}; evaluation must be read-only"
            )


def _probe_results(
    feats_used: dict[str, np.ndarray],
    views: np.ndarray,
    n: int,
    meta: dict[str, np.ndarray],
    splits: ViewSplits,
    *,
    tests: dict[str, np.ndarray],
    queries: dict[str, np.ndarray],
    room_names: list[str],
    config: BenchConfig,
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, int]]:
    """Room classification and localization of every representation in every setting.

    Args:
        feats_used: per representation, float32 (V, D) features of ``views``.
        views: int (V,) the embedded views (every view some protocol uses).
        n: views in the dataset.
        meta: the dataset's per-view metadata (``room``, ``position``, ``rotation``, ``scene``; N rows).
        splits: the :class:`envsim.store.splits.ViewSplits` of the dataset.
        tests: bool (N,) test views per setting.
        queries: bool (N,) localization queries per setting.
        room_names: the dataset's room classes.
        config: bench settings.

    Returns:
        ``results[representation][setting][metric]``, and each representation's feature dimension.
    """
    room = meta["room"].astype(np.int64)
    used = splits.train | splits.familiar | splits.unfamiliar
    results: dict[str, dict[str, dict[str, Any]]] = {}
    feature_dims = {}
    for rep in REPRESENTATIONS:
        feats = np.zeros((n, feats_used[rep].shape[1]), np.float32)
        feats[views] = feats_used[rep]
        feature_dims[rep] = int(feats.shape[1])
        rooms = _room_metrics(feats, room, splits.train, tests, room_names, config)
        results[rep] = {}
        for k, setting in enumerate(SETTINGS):
            rng = np.random.default_rng([config.seed, k])  # same chance draws for every representation
            errors = localization_errors(
                feats, meta["position"], meta["rotation"], meta["scene"], queries[setting],
                database=used & ~splits.query, rng=rng, alpha=config.ridge_alpha,
            )
            results[rep][setting] = {**rooms[setting], **localization_summary(errors)}
    return results, feature_dims


def _report(
    run: str | os.PathLike,
    record: dict[str, Any],
    config: BenchConfig,
    *,
    reader: DatasetReader,
    size: int,
    init_seed: int,
    feature_dims: dict[str, int],
    manifest_sha: str,
    trained_on: str | None,
    summary: dict[str, Any],
    warnings: list[str],
    checks: dict[str, Any],
    results: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The report of :func:`evaluate_run` (before :func:`envsim.provenance.to_jsonable`).

    Args:
        run: the run folder or encoder file.
        record: the encoder's record (from :func:`training.encoder.load_encoder`).
        config: bench settings.
        reader: the dataset's (closed) :class:`envsim.store.reader.DatasetReader`; its metadata stays cached.
        size: side in pixels the encoders saw.
        init_seed: seed of the random-init encoder.
        feature_dims: feature dimension of each representation.
        manifest_sha: the dataset's manifest SHA-256.
        trained_on: the manifest SHA-256 the run was trained on (None: not recorded).
        summary: the split sizes.
        warnings: the room-class warnings.
        checks: the invariants checked.
        results: ``results[representation][setting][metric]``.
    """
    from benchmarks.machine import machine_info
    from envsim.version import code_version

    train_cfg = record.get("config") or {}
    arch = record["arch"]
    return {
        "format": REPORT_FORMAT,
        "run": str(Path(run)),
        "checkpoint": {
            "sha256": record["sha256"], "step": record.get("step"), "code_version": record.get("code_version"),
        },
        "method": str(train_cfg.get("method", "unknown")),
        "arch": arch,
        "training_seed": record.get("seed"),
        "seeds": {"training": record.get("seed"), "bench": config.seed, "random_init": init_seed},
        "bench_config": asdict(config),
        "image_size": int(size),
        "representations": {
            "trained": f"{arch} backbone of the run (frozen), {feature_dims['trained']}-d",
            "random-init": f"{arch} at random initialisation (seed {init_seed}), {feature_dims['random-init']}-d",
            "pixels": f"RGB averaged to {config.pixels_size}x{config.pixels_size}, {feature_dims['pixels']}-d",
        },
        "dataset": {
            "path": str(reader.folder),
            "manifest_sha256": manifest_sha,
            "trained_on_manifest_sha256": trained_on,
            "same_as_training": None if trained_on is None else trained_on == manifest_sha,
            "views": len(reader),
            "width": reader.width,
            "height": reader.height,
            "scene_names": reader.scene_names,
            "room_names": reader.room_names,
        },
        "splits": summary,
        "warnings": warnings,
        "checks": checks,
        "code_version": code_version(),
        "machine": machine_info(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results": results,
    }
