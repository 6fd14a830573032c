"""The ``ess bench`` report's files: ``bench.json`` (the report of
:func:`benchmarks.evaluation.evaluate.evaluate_run`) and ``bench.md`` (its readable summary: provenance, split
sizes, one table of room classification and localization and one of the pretext probes, each a row per
representation and setting).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envsim.provenance import atomic_write, to_jsonable

REPORT_FORMAT = "ess-bench/1"
REPORT_JSON = "bench.json"
REPORT_MD = "bench.md"
BENCH_DIR = "bench"


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "int":
        return str(int(value))
    return f"{value:.2f}"


SUMMARY_COLUMNS = (
    ("room_linear_top1", "room linear top-1 %", "pct"),
    ("room_knn_top1", "room k-NN top-1 %", "pct"),
    ("loc_retrieval_median_m", "retrieval median m", "m"),
    ("loc_retrieval_median_deg", "retrieval median °", "m"),
    ("loc_retrieval_recall_0.5m", "R@0.5 m %", "pct"),
    ("loc_retrieval_recall_1m", "R@1 m %", "pct"),
    ("loc_retrieval_recall_1m_30deg", "R@(1 m, 30°) %", "pct"),
    ("loc_regression_median_m", "regression median m", "m"),
    ("loc_chance_median_m", "chance median m", "m"),
    ("loc_oracle_median_m", "oracle median m", "m"),
)


PRETEXT_COLUMNS = (
    ("sp_mae_dx", "SP MAE dx", "m"),
    ("sp_mae_dy", "SP MAE dy", "m"),
    ("sp_mae_log_scale", "SP MAE log scale", "m"),
    ("sp_r2", "SP R²", "m"),
    ("jigsaw_perm_top1", "jigsaw permutation %", "pct"),
    ("jigsaw_tile_acc", "jigsaw tiles %", "pct"),
    ("pose_median_m", "pose median m", "m"),
    ("pose_median_deg", "pose median °", "m"),
)


def _table(report: dict[str, Any], columns: tuple[tuple[str, str, str], ...]) -> list[str]:
    """One row per representation and setting, one column per metric."""
    lines = [
        "| representation | setting | " + " | ".join(c[1] for c in columns) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for rep, settings in report["results"].items():
        for setting, m in settings.items():
            lines.append(f"| {rep} | {setting} | " + " | ".join(_fmt(m.get(key), kind) for key, _, kind in columns) + " |")
    return lines


def _pretext_markdown(report: dict[str, Any]) -> list[str]:
    """The pretext probes' section: sizes and sources, then their table (or why they were skipped)."""
    p = report.get("pretext")
    if p is None:  # a report from before the pretext probes
        return []
    if p.get("skipped"):
        return ["Pretext probes (SP, jigsaw, relative pose): skipped: " + p["skipped"], ""]
    v, pairs = p["views"], p["pose_pairs"]
    return [
        (f"Pretext probes on the labels of `{p['labels']['file']}` (`{p['labels']['sha256'][:12]}`): SP crop "
         f"position/scale and jigsaw ({p['jigsaw_grid'][0]}x{p['jigsaw_grid'][1]} tiles, {p['jigsaw_permutations']} "
         f"permutations: chance {100 / p['jigsaw_permutations']:.1f} %) on train {v['train']} / familiar "
         f"{v['familiar']} / unfamiliar {v['unfamiliar']} views (at most {p['max_views'] or 'every'} per split); "
         f"relative pose on train {pairs['train']} / familiar {pairs['familiar']} / unfamiliar {pairs['unfamiliar']} "
         "(view, partner) pairs."),
        "",
        *_table(report, PRETEXT_COLUMNS),
        "",
    ]


def bench_markdown(report: dict[str, Any]) -> str:
    """A readable Markdown summary of a report: provenance, split sizes and one row per representation
    and setting with the main metrics."""
    s = report["splits"]
    v = s["views"]
    lines = [
        f"# Benchmark of `{report['run']}`",
        "",
        (f"- method **{report['method']}**, {report['arch']}, training seed {report['training_seed']}, "
         f"checkpoint `{report['checkpoint']['sha256'][:12]}` (step {report['checkpoint']['step']})"),
        f"- dataset `{report['dataset']['path']}` (manifest `{report['dataset']['manifest_sha256'][:12]}`"
        + ("" if report["dataset"]["same_as_training"] in (None, True) else ", **not** the training dataset")
        + f"), images fed at {report['image_size']} px",
        (f"- splits ({s['source']}): train {v['train']} views, familiar {v['familiar']}, unfamiliar {v['unfamiliar']}, "
         f"queries {s['queries']['familiar']} familiar / {s['queries']['unfamiliar']} unfamiliar; "
         f"training scenes {', '.join(s['train_scenes'])}; unfamiliar scenes {', '.join(s['test_scenes']) or 'none'}"),
        (f"- room probes: {s['room_train_views']} labelled training views, test {s['room_test_views']['familiar']} "
         f"familiar / {s['room_test_views']['unfamiliar']} unfamiliar (unknown rooms excluded)"),
        (f"- bench seed {report['seeds']['bench']}, random-init seed {report['seeds'].get('random_init')}, "
         f"k-NN k={report['bench_config']['knn_k']}, "
         f"code {report['code_version']}"),
        "",
        *_table(report, SUMMARY_COLUMNS),
    ]
    lines += ["", "Chance: a random database view of the query's scene; oracle: the nearest database camera.", ""]
    lines += _pretext_markdown(report)
    if report.get("warnings"):
        lines += ["Warnings:", *[f"- {w}" for w in report["warnings"]], ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md``.

    Args:
        report: from :func:`benchmarks.evaluation.evaluate.evaluate_run`.
        out_dir: folder (created when missing); default ``<run>/bench``.

    Returns:
        (json path, markdown path).
    """
    folder = Path(out_dir) if out_dir is not None else _run_folder(report["run"]) / BENCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / REPORT_JSON, folder / REPORT_MD
    atomic_write(json_path, json.dumps(to_jsonable(report, finite=True), indent=2, allow_nan=False) + "\n")
    atomic_write(md_path, bench_markdown(report))
    return json_path, md_path


def _run_folder(run: str | os.PathLike) -> Path:
    path = Path(run)
    return path.parent if path.suffix == ".pt" else path


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """A report written by :func:`write_report` (a ``bench.json`` file, or a run folder holding
    ``bench/bench.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / BENCH_DIR / REPORT_JSON
    report = json.loads(path.read_text())
    if report.get("format") != REPORT_FORMAT:
        raise ValueError(f"{path} is not an ess bench report (format {report.get('format')!r}); rerun `ess bench`")
    return report
