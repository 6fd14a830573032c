"""``ess qa DIR --out QADIR`` and ``ess qa-score QADIR --responses FILE``: options, the scenes' object tables,
progress bar and summaries around :func:`pairing.qa.export_qa` and :func:`pairing.qa.score`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ess.args import UserError, non_negative_int, positive_int

log = logging.getLogger(__name__)


def _grid(text: str) -> tuple[int, int]:
    from pairing.qa import parse_grid

    try:
        return parse_grid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pairing.qa import QATask, Split

    names = ", ".join(t.value for t in QATask)
    p.add_argument("folder", help="a dataset folder written by `ess render`")
    p.add_argument("--out", required=True,
                   help="the QA folder to write (qa.jsonl, images/, contact_sheet.png, manifest.json)")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help=f"tasks, comma- or space-separated: {names} (default: all the dataset carries; "
                        "position needs `ess render --semantic object`)")
    p.add_argument("--per-view", type=positive_int, default=1, help="questions per view and task (default 1)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of every draw (default 0)")
    p.add_argument("--grid", type=_grid, default=(3, 3), metavar="RxC", help="tiles, ROWS x COLUMNS (default 3x3)")
    p.add_argument("--split", choices=[s.value for s in Split], default="train",
                   help="views to ask about (default train)")
    p.add_argument("--force", action="store_true", help="replace an existing QA export in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _tasks(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(t.strip().lower() for v in values for t in v.split(",") if t.strip())


def scene_tables(folder: Path, manifest: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """Object tables (:class:`pairing.qa.SceneObjects`) of the dataset's mesh scenes called ``names``, loaded
    the way the render job loaded them; scenes of Habitat stages (instance ids), and files that are missing or
    changed since the render, are left out (their objects stay anonymous)."""
    from envsim.provenance import file_sha256
    from envsim.scenes.load import load_scene, sidecar_path
    from envsim.scenes.scene import SceneError, UpAxis
    from pairing.qa import scene_objects

    tables = {}
    for rec in manifest.get("scenes", []):
        if rec.get("name") not in names or "stage" in rec or rec.get("up") not in ("y", "z") or not rec.get("source"):
            continue
        path = Path(rec["source"]) if Path(rec["source"]).is_absolute() else folder / rec["source"]
        if not path.is_file() or file_sha256(path) != rec.get("sha256"):
            log.warning("scene %s: %s is missing or changed since the render; its objects stay anonymous",
                        rec["name"], path)
            continue
        try:
            scene = load_scene(path, up=UpAxis(rec["up"]), name=rec["name"])
            side = sidecar_path(path)
            sidecar = json.loads(side.read_text()) if side.is_file() else None
            tables[rec["name"]] = scene_objects(scene.object_names, sidecar)
        except (SceneError, ValueError) as exc:
            log.warning("scene %s: %s; its objects stay anonymous", rec["name"], exc)
    return tables


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from envsim.store.reader import DatasetReader
    from pairing.qa import QAConfig, QATask, TileConfig, export_qa
    from pairing.qa.export import has_object_ids, split_views

    try:
        config = QAConfig(tasks=_tasks(args.tasks), per_view=args.per_view, seed=args.seed, split=args.split,
                          tiles=TileConfig(grid=args.grid))
        reader = DatasetReader(args.folder)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    views = split_views(reader, config.split)
    tables = {}
    if (config.tasks is None or QATask.POSITION in config.tasks) and has_object_ids(reader.manifest):
        names = {reader.scene_names[int(i)] for i in set(reader.meta()["scene"][views].tolist())}
        tables = scene_tables(reader.folder, reader.manifest, names)
    reader.close()
    try:
        with tqdm(total=len(views), unit="view", desc="qa", disable=args.no_progress, file=sys.stderr) as bar:
            summary = export_qa(args.folder, args.out, config=config, objects=tables, progress=bar.update,
                                force=args.force)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(f"{summary.records} questions from {summary.views} views -> {summary.out}")
    for task in summary.tasks:
        skipped = summary.skips[task.value]
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) if skipped else "none"
        print(f"  {task.value:<9} {summary.counts[task.value]:>6} questions; skipped: {why}")
    return 0


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a QA folder written by `ess qa`")
    p.add_argument("--responses", required=True, metavar="FILE.jsonl",
                   help='model outputs, one JSON object per line: {"id": <record id>, "response": <text>}')
    p.add_argument("--json", action="store_true", help="print the scores as JSON")


def run_score(args: argparse.Namespace) -> int:
    from pairing.qa import read_records, read_responses, score

    try:
        records = read_records(args.folder)
        responses = read_responses(args.responses)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    unknown = sorted(set(responses) - {r["id"] for r in records})
    if unknown:
        raise UserError(f"{args.responses} answers {len(unknown)} id(s) not in {args.folder}, e.g. {unknown[0]!r}; "
                        "score responses against the export they answer")
    scores = score(records, responses)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"{'task':<9} {'answered':>13} {'accuracy':>9} {'format':>7} {'reward':>7}")
    for task, s in scores.items():
        print(f"{task:<9} {s['answered']:>6}/{s['questions']:<6} {s['accuracy']:>9.3f} {s['format']:>7.3f} "
              f"{s['reward']:>7.3f}")
    return 0
