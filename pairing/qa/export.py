"""``ess qa``: a rendered dataset's views as Spatial-SSRL questions, their images and a manifest.

The export folder::

    QADIR/
      qa.jsonl            one record per question (see :func:`export_qa`)
      images/*.png        <id>.png (and <id>-A.png ... <id>-D.png for crop inpainting)
      contact_sheet.png   one question per task
      manifest.json       dataset manifest SHA-256, config, seed, code version, counts and skips per task

It is written in ``.QADIR.partial`` beside ``QADIR`` and renamed into place when complete. Each question
draws from its own generator, seeded from (seed, task, view, k), so the same dataset and seed give the same
bytes, whatever else is asked.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from envsim.provenance import derive_rng, durable_replace, file_sha256, to_jsonable, write_json_atomic
from envsim.store.reader import DatasetReader
from envsim.store.splits import view_splits
from envsim.version import code_version
from pairing.qa.images import encode_png
from pairing.qa.objects import SceneObjects
from pairing.qa.position import PositionConfig, build_position
from pairing.qa.records import (
    IMAGES_DIR,
    MANIFEST_NAME,
    QA_FORMAT,
    RECORDS_NAME,
    SHEET_NAME,
    QAError,
    manifest_format,
    record_line,
)
from pairing.qa.sheet import contact_sheet
from pairing.qa.tasks import (
    DepthTaskConfig,
    QATask,
    Question,
    Skip,
    TileConfig,
    ViewData,
    build_depth,
    build_flip,
    build_inpaint,
    build_reorder,
)


class Split(str, Enum):
    """Which views become questions (:func:`envsim.store.splits.view_splits`); ``all`` is every view."""

    TRAIN = "train"
    FAMILIAR = "familiar"
    UNFAMILIAR = "unfamiliar"
    QUERY = "query"
    ALL = "all"


@dataclass(frozen=True)
class QAConfig:
    """Settings of a QA export.

    Attributes:
        tasks: the tasks, in :class:`QATask` order; None = every task the dataset carries (``position``
            only with per-pixel object ids).
        per_view: questions per view and task, >= 1.
        seed: seed of every draw, >= 0.
        split: the views asked about.
        tiles: reorder, flip and inpaint settings (the grid).
        depth: depth-ordering thresholds.
        position: relative-position margins.
    """

    tasks: tuple[QATask, ...] | None = None
    per_view: int = 1
    seed: int = 0
    split: Split = Split.TRAIN
    tiles: TileConfig = field(default_factory=TileConfig)
    depth: DepthTaskConfig = field(default_factory=DepthTaskConfig)
    position: PositionConfig = field(default_factory=PositionConfig)

    def __post_init__(self) -> None:
        if self.tasks is not None:
            try:
                tasks = {QATask(t) for t in self.tasks}
            except ValueError:
                raise ValueError(f"unknown task in {list(self.tasks)}; choose from "
                                 f"{', '.join(t.value for t in QATask)}") from None
            if not tasks:
                raise ValueError("give at least one task, e.g. --tasks reorder,flip")
            object.__setattr__(self, "tasks", tuple(t for t in QATask if t in tasks))
        object.__setattr__(self, "split", Split(self.split))
        if int(self.per_view) != self.per_view or self.per_view < 1:
            raise ValueError(f"--per-view must be a whole number >= 1, got {self.per_view}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"--seed must be a whole number >= 0, got {self.seed}")


@dataclass(frozen=True)
class QASummary:
    """What an export wrote: its folder, the tasks, views, records, counts and skips per task."""

    out: Path
    tasks: tuple[QATask, ...]
    views: int
    records: int
    counts: dict[str, int]
    skips: dict[str, dict[str, int]]


def build_question(task: QATask, view: ViewData, rng: np.random.Generator, config: QAConfig) -> Question | Skip:
    """One question of ``task`` about ``view`` (or why not), drawn from ``rng``."""
    if task is QATask.REORDER:
        return build_reorder(view, rng, config.tiles)
    if task is QATask.FLIP:
        return build_flip(view, rng, config.tiles)
    if task is QATask.INPAINT:
        return build_inpaint(view, rng, config.tiles)
    if task is QATask.DEPTH:
        return build_depth(view, rng, config.depth)
    return build_position(view, rng, config.position)


def has_object_ids(manifest: Mapping[str, Any]) -> bool:
    """Whether a dataset was rendered with ``--semantic object`` (per-pixel object ids)."""
    return ((manifest.get("config") or {}).get("render") or {}).get("semantic") == "object"


def resolve_tasks(config: QAConfig, manifest: Mapping[str, Any], folder: Path) -> tuple[QATask, ...]:
    """The tasks to export: ``config.tasks``, or every task the dataset carries.

    Raises:
        QAError: ``position`` asked of a dataset without object ids.
    """
    ids = has_object_ids(manifest)
    if config.tasks is None:
        return tuple(t for t in QATask if t is not QATask.POSITION or ids)
    if QATask.POSITION in config.tasks and not ids:
        others = ",".join(t.value for t in config.tasks if t is not QATask.POSITION) or "reorder,flip,inpaint,depth"
        raise QAError(f"task 'position' needs per-pixel object ids and {folder} has none: render it with "
                      f"`ess render ... --semantic object`, or leave the task out (--tasks {others})")
    return config.tasks


def _prepare(out: Path, *, force: bool) -> Path:
    """Check that ``out`` may be written and return a fresh partial folder beside it."""
    if out.exists() and not out.is_dir():
        raise QAError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST_NAME).is_file() or manifest_format(out / MANIFEST_NAME) != QA_FORMAT:
            raise QAError(f"--out {out} is not empty and holds no QA export; choose another folder")
        if not force:
            raise QAError(f"--out {out} already holds a QA export; pass --force to replace it or choose another folder")
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)  # a killed export's leftovers (only this command writes this name)
    (tmp / IMAGES_DIR).mkdir(parents=True)
    return tmp


def split_views(reader: DatasetReader, split: Split) -> np.ndarray:
    """The global view indices of a split, increasing (int64)."""
    if Split(split) is Split.ALL:
        return np.arange(len(reader), dtype=np.int64)
    return np.flatnonzero(getattr(view_splits(reader.manifest, reader.meta()), Split(split).value))


def _view_data(reader: DatasetReader, v: int, tasks: tuple[QATask, ...], objects: SceneObjects | None) -> ViewData:
    need_depth = QATask.DEPTH in tasks or QATask.POSITION in tasks
    return ViewData(
        rgb=reader.read("rgb", v),
        pose=np.asarray(reader.meta()["pose"][v], np.float64),
        K=reader.K,
        depth=reader.read("depth", v) if need_depth else None,
        semantic=reader.read("semantic", v) if QATask.POSITION in tasks else None,
        objects=objects,
    )


def _write_question(tmp: Path, q: Question, qid: str, view: int, scene: str) -> dict[str, Any]:
    """Write a question's PNGs under ``tmp/images`` and return its record."""
    suffixes = [""] if len(q.images) == 1 else ["", *(f"-{chr(ord('A') + i)}" for i in range(len(q.images) - 1))]
    names = [f"{IMAGES_DIR}/{qid}{s}.png" for s in suffixes]
    for name, image in zip(names, q.images):
        (tmp / name).write_bytes(encode_png(image))
    return {"id": qid, "task": q.task.value, "view": view, "scene": scene, "images": names, "prompt": q.prompt,
            "answer": q.answer, "answer_struct": q.answer_struct, "meta": to_jsonable(q.meta)}


def _ask(reader: DatasetReader, views: np.ndarray, tasks: tuple[QATask, ...], config: QAConfig, tmp: Path,
         objects: Mapping[str, SceneObjects], progress: Callable[[int], None] | None) -> tuple[list, dict, dict]:
    """Every question of every view: (records, first question per task for the sheet, skips per task)."""
    records: list[dict[str, Any]] = []
    first: dict[str, tuple[dict, list]] = {}
    skips: dict[str, dict[str, int]] = {t.value: {} for t in tasks}
    scene_of = reader.meta()["scene"]
    for v in views.tolist():
        scene = reader.scene_names[int(scene_of[v])]
        view = _view_data(reader, v, tasks, objects.get(scene))
        for task in tasks:
            for k in range(config.per_view):
                q = build_question(task, view, derive_rng(config.seed, "qa", task.value, str(v), str(k)), config)
                if isinstance(q, Skip):
                    skips[task.value][q.reason] = skips[task.value].get(q.reason, 0) + 1
                    continue
                records.append(_write_question(tmp, q, f"{task.value}-{v:06d}-{k}", v, scene))
                first.setdefault(task.value, (records[-1], q.images))
        if progress is not None:
            progress(1)
    return records, first, skips


def _write_index(tmp: Path, records: list[dict], sheet: list[tuple[dict, list]], manifest: dict[str, Any]) -> None:
    """Write ``qa.jsonl``, the contact sheet (one question per task) and the manifest, with their checksums."""
    (tmp / RECORDS_NAME).write_text("".join(record_line(r) + "\n" for r in records))
    (tmp / SHEET_NAME).write_bytes(contact_sheet([r for r, _ in sheet], [im for _, im in sheet]))
    files = {name: file_sha256(tmp / name) for name in (RECORDS_NAME, SHEET_NAME)}
    write_json_atomic(tmp / MANIFEST_NAME, {**manifest, "files": files})


def export_qa(folder: str | os.PathLike, out: str | os.PathLike, *, config: QAConfig,
              objects: Mapping[str, SceneObjects] | None = None, progress: Callable[[int], None] | None = None,
              force: bool = False) -> QASummary:
    """Export a rendered dataset's views as QA records, images, a contact sheet and a manifest.

    Args:
        folder: a finished ``ess render`` dataset.
        out: the export folder (created; must be empty, or hold an export and ``force``).
        config: tasks, questions per view, seed, split and task settings.
        objects: scene name -> object table (categories, yaws) for the position task; scenes missing here
            have anonymous objects, asked about in the camera's frame.
        progress: called with 1 after each view.
        force: replace an existing export in ``out``.

    Returns:
        The summary (also in ``manifest.json``).

    Raises:
        QAError: ``out`` holds something else, or a task the dataset cannot carry is asked for.
        ValueError: ``folder`` is not a finished dataset.
    """
    reader = DatasetReader(folder)
    out = Path(out)
    try:
        tasks = resolve_tasks(config, reader.manifest, Path(folder))
        views = split_views(reader, config.split)
        tmp = _prepare(out, force=force)
        try:
            records, first, skips = _ask(reader, views, tasks, config, tmp, objects or {}, progress)
            counts = {t.value: sum(r["task"] == t.value for r in records) for t in tasks}
            _write_index(tmp, records, [first[t.value] for t in tasks if t.value in first], {
                "format": QA_FORMAT, "dataset": str(folder), "dataset_manifest_sha256": reader.manifest_sha256(),
                "code_version": code_version(), "seed": config.seed, "config": to_jsonable(config),
                "tasks": [t.value for t in tasks], "split": config.split.value, "views": len(views),
                "records": len(records), "counts": counts, "skips": skips,
            })
            if out.exists():  # an empty folder, or an export _prepare allowed to replace
                shutil.rmtree(out)
            durable_replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        reader.close()
    return QASummary(out=out, tasks=tasks, views=len(views), records=len(records), counts=counts, skips=skips)
