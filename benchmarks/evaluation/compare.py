"""Compare bench reports across methods and seeds: the ESS paper's table (arXiv 2401.15120) on our data.

Runs are grouped by training method (``moco``, ``ess-mb``, ``ess-mw``, then any other, e.g. ``byol`` or
``sarl``, in name order); every scalar metric of the ``trained`` representation is summarised per setting as
mean ± sample std over the group's runs (its training seeds). The table shows room classification and
localization first, then the pretext probes (SP R^2, jigsaw permutation and tile accuracy, relative-pose
medians: :mod:`benchmarks.evaluation.pretext`). The floors count each distinct network once: ``random-init`` (per
architecture) over its distinct initialisation seeds, ``pixels`` once (n = 1: it has no seed).

Paired differences: each method other than ``moco`` minus ``moco``, and each method minus its random-init
floor, are taken per training seed (the runs of one seed share the initial network, the order of views and
the augmentations), then summarised as mean, sample std and a 95 % Student-t confidence interval over the
seeds. ``checks`` holds, per method, whether it beats the random-init floor on familiar room k-NN by more
than the spread of either (the outcome of the comparison, computed here).

Reports must come from the same dataset and the same bench settings, and a checkpoint may appear only once:
otherwise the numbers would not be comparable or ``n`` would be inflated.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from benchmarks.evaluation.evaluate import DETERMINING_FIELDS, SETTINGS
from benchmarks.evaluation.metrics import mean_std
from envsim.provenance import atomic_write, to_jsonable

COMPARISON_FORMAT = "ess-comparison/2"
BASELINE = "moco"
CONFIDENCE = 0.95
METHOD_ORDER = ("moco", "ess-mb", "ess-mw")
TABLE_COLUMNS = (
    ("room_linear_top1", "room linear %", "pct"),
    ("room_knn_top1", "room k-NN %", "pct"),
    ("loc_retrieval_median_m", "retrieval median m", "m"),
    ("loc_retrieval_recall_1m", "R@1 m %", "pct"),
    ("loc_regression_median_m", "regression median m", "m"),
    ("sp_r2", "SP R²", "m"),
    ("jigsaw_perm_top1", "jigsaw perm %", "pct"),
    ("jigsaw_tile_acc", "jigsaw tiles %", "pct"),
    ("pose_median_m", "pose median m", "m"),
    ("pose_median_deg", "pose median °", "m"),
)
PLOT_METRICS = (
    ("room_linear_top1", "room classification, linear top-1"),
    ("loc_retrieval_recall_1m", "localization, recall@1 m"),
)


def _scalar_metrics(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """mean/std/n of every scalar metric, per setting, over a list of ``results[rep]`` dicts."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for setting in SETTINGS:
        rows = [r.get(setting) or {} for r in runs]
        keys = [k for k, v in rows[0].items() if v is None or isinstance(v, (int, float))] if rows else []
        out[setting] = {}
        for key in keys:
            mean, std = mean_std(row.get(key) for row in rows)
            out[setting][key] = {"mean": mean, "std": std, "n": len(rows)}
    return out


def _group(name: str, kind: str, reports: list[dict[str, Any]], rep: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "n_runs": len(reports),
        "training_seeds": [r.get("training_seed") for r in reports],
        "runs": [r["run"] for r in reports],
        "checkpoints": [r["checkpoint"]["sha256"] for r in reports],
        "metrics": _scalar_metrics([r["results"][rep] for r in reports]),
    }


def _init_seed(report: dict[str, Any]) -> Any:
    return (report.get("seeds") or {}).get("random_init", (report.get("seeds") or {}).get("bench"))


def _distinct_inits(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One report per random-init seed (the floor is the same network whatever was trained from it)."""
    seen: dict[Any, dict[str, Any]] = {}
    for r in reports:
        seen.setdefault(_init_seed(r), r)
    return list(seen.values())


def paired_difference(values: list[tuple[float | None, float | None]]) -> dict[str, Any]:
    """Mean, sample std and 95 % Student-t confidence interval of paired differences ``a - b``.

    Args:
        values: ``(a, b)`` per pair (e.g. per training seed); a pair with a None is dropped.

    Returns:
        ``{"mean", "std", "n", "ci_low", "ci_high"}``; the interval is None for fewer than two pairs.
    """
    d = np.array([a - b for a, b in values if a is not None and b is not None], np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"mean": None, "std": None, "n": 0, "ci_low": None, "ci_high": None}
    mean, std = mean_std(d.tolist())
    half = None
    if d.size >= 2:
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, d.size - 1) * std / math.sqrt(d.size))
    return {"mean": mean, "std": std, "n": int(d.size),
            "ci_low": None if half is None else mean - half, "ci_high": None if half is None else mean + half}


def _paired(a_runs: list[dict[str, Any]], b_runs: list[dict[str, Any]], b_rep: str, key_of) -> dict[str, Any]:
    """Paired differences of every table metric, per setting: ``a`` trained minus ``b``'s ``b_rep``,
    pairs matched by ``key_of(report)``."""
    by_key = {key_of(r): r for r in b_runs}
    pairs = [(r, by_key[key_of(r)]) for r in a_runs if key_of(r) in by_key]
    out: dict[str, Any] = {"seeds": [a.get("training_seed") for a, _ in pairs]}
    for setting in SETTINGS:
        out[setting] = {
            key: paired_difference([((a["results"]["trained"].get(setting) or {}).get(key),
                                     (b["results"][b_rep].get(setting) or {}).get(key)) for a, b in pairs])
            for key, _, _ in TABLE_COLUMNS
        }
    return out


def _beats_floor(method_row: dict[str, Any], floor_row: dict[str, Any]) -> dict[str, Any]:
    """Familiar room k-NN: the method's mean above the floor's by more than the larger of the two spreads."""
    m = method_row["metrics"]["familiar"].get("room_knn_top1") or {}
    f = floor_row["metrics"]["familiar"].get("room_knn_top1") or {}
    if m.get("mean") is None or f.get("mean") is None:
        return {"margin": None, "spread": None, "passed": None}
    margin = m["mean"] - f["mean"]
    spread = max(m.get("std") or 0.0, f.get("std") or 0.0)
    return {"margin": margin, "spread": spread, "passed": bool(margin > spread)}


def compare_runs(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std per method over seeds, plus the random-init and raw-pixel floors.

    Args:
        reports: bench reports (:func:`benchmarks.evaluation.evaluate.evaluate_run`), one per run.

    Returns:
        ``{"format", "dataset_manifest_sha256", "bench_config", "settings", "rows": [...]}``; each row
        (methods in the order moco, ess-mb, ess-mw, others; then ``random-init (<arch>)`` and ``pixels``)
        has ``name``, ``kind`` ("method" or "baseline"), ``n_runs``, ``training_seeds``, ``runs``,
        ``checkpoints`` and ``metrics[setting][metric] = {"mean", "std", "n"}`` (std with ddof=1; 0 for one
        run; None where a metric is NaN); ``differences["<method> - moco" | "<method> - random-init"]
        [setting][metric]`` from :func:`paired_difference` (plus the ``seeds`` paired); ``checks``.

    Raises:
        ValueError: no reports, reports from different datasets or bench settings, or a duplicated run.
    """
    if not reports:
        raise ValueError("nothing to compare: give at least one bench report")
    shas = sorted({r["dataset"]["manifest_sha256"] for r in reports})
    if len(shas) > 1:
        raise ValueError(
            f"the reports were evaluated on {len(shas)} different datasets; bench every run on the same --data"
        )
    configs = {json.dumps({k: r["bench_config"].get(k) for k in DETERMINING_FIELDS}, sort_keys=True) for r in reports}
    if len(configs) > 1:
        raise ValueError(
            f"the reports used different bench settings ({' vs '.join(sorted(configs))}); rerun them alike"
        )
    seen: dict[str, str] = {}
    for r in reports:
        sha = r["checkpoint"]["sha256"]
        if sha in seen:
            raise ValueError(f"{r['run']} and {seen[sha]} hold the same checkpoint; give each run once")
        seen[sha] = r["run"]
    def order(method: str) -> tuple[int, str]:
        return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)

    methods = sorted({r["method"] for r in reports}, key=order)
    by_method = {m: [r for r in reports if r["method"] == m] for m in methods}
    rows = [_group(m, "method", by_method[m], "trained") for m in methods]
    floors = {}
    for arch in sorted({r["arch"] for r in reports}):
        inits = _distinct_inits([r for r in reports if r["arch"] == arch])
        floors[arch] = _group(f"random-init ({arch})", "baseline", inits, "random-init")
        floors[arch]["init_seeds"] = [_init_seed(r) for r in inits]
        rows.append(floors[arch])
    rows.append(_group("pixels", "baseline", reports[:1], "pixels"))
    differences = {}
    for m in methods:
        if m != BASELINE and BASELINE in by_method:
            differences[f"{m} - {BASELINE}"] = _paired(by_method[m], by_method[BASELINE], "trained",
                                                       lambda r: r.get("training_seed"))
        differences[f"{m} - random-init"] = _paired(by_method[m], by_method[m], "random-init", lambda r: r["run"])
    checks = {}
    for row in rows[: len(methods)]:
        arch = by_method[row["name"]][0]["arch"]
        checks[f"{row['name']} beats random-init on familiar room k-NN by more than the spread"] = _beats_floor(
            row, floors[arch])
    from envsim.version import code_version

    return to_jsonable({
        "format": COMPARISON_FORMAT,
        "dataset_manifest_sha256": shas[0],
        "bench_config": {k: reports[0]["bench_config"].get(k) for k in DETERMINING_FIELDS},
        "settings": list(SETTINGS),
        "code_version": code_version(),
        "rows": rows,
        "differences": differences,
        "checks": checks,
    }, finite=True)


def _cell(stat: dict[str, Any] | None, kind: str) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    scale = 100.0 if kind == "pct" else 1.0
    digits = 1 if kind == "pct" else 2
    std = stat.get("std")
    std_text = "–" if std is None else f"{scale * std:.{digits}f}"
    return f"{scale * stat['mean']:.{digits}f} ± {std_text}"


def _diff_cell(stat: dict[str, Any] | None, kind: str) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    scale, digits = (100.0, 1) if kind == "pct" else (1.0, 2)
    text = f"{scale * stat['mean']:+.{digits}f}"
    if stat.get("ci_low") is not None:
        text += f" [{scale * stat['ci_low']:+.{digits}f}, {scale * stat['ci_high']:+.{digits}f}]"
    return text


def differences_markdown(comparison: dict[str, Any]) -> list[str]:
    """The paired differences as Markdown table lines (percentage points, metres, degrees or R^2; 95 % CI)."""
    settings = comparison["settings"]
    diffs = comparison.get("differences") or {}
    if not diffs:
        return []
    head = ["difference", "n"] + [f"{s} {label}" for s in settings for _, label, _ in TABLE_COLUMNS]
    lines = [
        "| " + " | ".join(head) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in head[2:]) + " |",
    ]
    for name, d in diffs.items():
        cells = [_diff_cell(d.get(s, {}).get(key), kind) for s in settings for key, _, kind in TABLE_COLUMNS]
        lines.append(f"| {name} | {len(d.get('seeds', []))} | " + " | ".join(cells) + " |")
    return lines


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as Markdown: one row per method and floor, for each setting the room classification
    (linear, k-NN top-1 %), localization (retrieval median m, recall@1 m %, regression median m) and pretext
    probe (SP R^2, jigsaw permutation and tile %, relative-pose median m and degrees) columns, each
    ``mean ± std`` over the row's runs; then the paired differences with their 95 % confidence
    intervals, and the checks."""
    settings = comparison["settings"]
    head = ["method", "n"] + [f"{s} {label}" for s in settings for _, label, _ in TABLE_COLUMNS]
    lines = [
        "# Room classification, spatial localization and pretext probes, familiar vs unfamiliar scenes",
        "",
        (f"Dataset `{comparison['dataset_manifest_sha256'][:12]}`; mean ± std over training seeds "
         f"(std with ddof=1; each floor network counted once: random-init per initialisation seed, pixels once); bench settings {comparison['bench_config']}."),
        "",
        "| " + " | ".join(head) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in head[2:]) + " |",
    ]
    for row in comparison["rows"]:
        cells = [_cell(row["metrics"].get(s, {}).get(key), kind) for s in settings for key, _, kind in TABLE_COLUMNS]
        name = row["name"] if row["kind"] == "method" else f"*{row['name']}*"
        lines.append(f"| {name} | {row['n_runs']} | " + " | ".join(cells) + " |")
    lines.append("")
    diff_lines = differences_markdown(comparison)
    if diff_lines:
        lines += [("Paired differences over training seeds (same seed = same initial network, view order and "
                   "augmentations): mean [95 % CI], percentage points, metres, degrees or R² (lower is better for "
                   "the medians)."), "", *diff_lines, ""]
    for name, check in (comparison.get("checks") or {}).items():
        if check.get("passed") is None:
            continue
        verdict = "yes" if check["passed"] else "**no**"
        lines.append(f"- {name}: {verdict} (margin {100 * check['margin']:.1f} points, spread "
                     f"{100 * check['spread']:.1f})")
    if comparison.get("checks"):
        lines.append("")
    return "\n".join(lines)


def comparison_plot(comparison: dict[str, Any], path: str | os.PathLike) -> Path:
    """A PNG bar chart (Pillow only): room linear top-1 and recall@1 m per row, familiar vs unfamiliar
    side by side, error bars = std over seeds.

    Args:
        comparison: from :func:`compare_runs`.
        path: PNG file to write.

    Returns:
        The path written.
    """
    from PIL import Image, ImageDraw, ImageFont

    rows = comparison["rows"]
    settings = comparison["settings"]
    colours = {"familiar": (31, 119, 180), "unfamiliar": (255, 127, 14)}
    font = ImageFont.load_default()
    bar_w, gap, pad_l, pad_r, pad_t, pad_b, plot_h = 18, 20, 48, 16, 40, 70, 240
    group_w = bar_w * len(settings) + gap
    panel_w = pad_l + group_w * max(len(rows), 1) + pad_r
    width, height = panel_w * len(PLOT_METRICS), pad_t + plot_h + pad_b + 20
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for p, (key, title) in enumerate(PLOT_METRICS):
        x0, y0, y1 = p * panel_w + pad_l, pad_t, pad_t + plot_h  # plot area left, top, bottom
        d.text((x0, 8), title, fill=(0, 0, 0), font=font)
        for tick in range(0, 101, 25):
            y = y1 - tick / 100 * plot_h
            d.line([(x0 - 4, y), (x0 + group_w * len(rows), y)], fill=(225, 225, 225) if tick else (0, 0, 0))
            d.text((x0 - 34, y - 6), f"{tick}%", fill=(0, 0, 0), font=font)
        d.line([(x0, y0), (x0, y1)], fill=(0, 0, 0))
        for r, row in enumerate(rows):
            gx = x0 + r * group_w + gap // 2
            for s, setting in enumerate(settings):
                stat = row["metrics"].get(setting, {}).get(key) or {}
                mean, std = stat.get("mean"), stat.get("std") or 0.0
                if mean is None:
                    continue
                bx = gx + s * bar_w
                top = y1 - max(0.0, min(1.0, mean)) * plot_h
                d.rectangle([bx + 1, top, bx + bar_w - 2, y1], fill=colours.get(setting, (128, 128, 128)))
                cx = bx + bar_w / 2
                lo, hi = y1 - max(0.0, mean - std) * plot_h, y1 - min(1.0, mean + std) * plot_h
                d.line([(cx, lo), (cx, hi)], fill=(0, 0, 0), width=1)
                d.line([(cx - 3, lo), (cx + 3, lo)], fill=(0, 0, 0))
                d.line([(cx - 3, hi), (cx + 3, hi)], fill=(0, 0, 0))
            label = "random-init" if row["name"].startswith("random-init") else row["name"]
            d.text((gx, y1 + 6 + 12 * (r % 2)), label[:14], fill=(0, 0, 0), font=font)
    for s, setting in enumerate(settings):
        x = 8 + s * 110
        d.rectangle([x, height - 18, x + 10, height - 8], fill=colours.get(setting, (128, 128, 128)))
        d.text((x + 14, height - 20), setting, fill=(0, 0, 0), font=font)
    path = Path(path)
    img.save(path)
    return path


def write_comparison(comparison: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path, Path]:
    """Write ``comparison.json``, ``comparison.md`` and ``comparison.png`` into ``out_dir`` (created).

    Returns:
        The three paths.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = folder / "comparison.json", folder / "comparison.md", folder / "comparison.png"
    atomic_write(json_path, json.dumps(to_jsonable(comparison, finite=True), indent=2, allow_nan=False) + "\n")
    atomic_write(md_path, comparison_markdown(comparison))
    comparison_plot(comparison, png_path)
    return json_path, md_path, png_path


def readme_block(comparison: dict[str, Any], demo: dict[str, Any] | None, source: str) -> str:
    """The README's ESS section: which run and code produced it, the table, the paired differences, the checks.

    Args:
        comparison: ``comparison.json``.
        demo: ``demo.json`` of the ``ess demo`` run that produced it (None: not from a demo).
        source: the folder the files were read from (named in the text).
    """
    lines = []
    if demo is not None:
        c, m = demo["config"], demo["machine"]
        total = sum(s["seconds"] or 0.0 for s in demo["steps"])
        train_s = [s["seconds"] for s in demo["steps"] if s["name"].startswith("train") and s["seconds"]]
        lines.append(
            f"`{' '.join(demo['command'])}` ({demo['profile']} profile) of {demo.get('finished_utc') or demo['started_utc']}, "
            f"{m.get('cores')} cores ({m.get('cpu') or m.get('processor') or 'CPU'}), code {demo['code_version']}, "
            f"{total / 60:.1f} min in all ({len(train_s)} training runs of {min(train_s or [0]):.0f}-"
            f"{max(train_s or [0]):.0f} s): {c['houses']} procedural houses x {c['views']} views at "
            f"{c['size']}x{c['size']}, {c['arch']}, {c['epochs']} epochs of batch {c['batch_size']}, "
            f"{c['seeds']} training seeds per method."
        )
        lines.append("")
    body = comparison_markdown(comparison).split("\n")
    lines += [line for line in body[2:]]  # without the title
    lines.append(f"Generated from `{source}/comparison.json` by `ess bench --results {source} --readme README.md`.")
    return "\n".join(lines).rstrip("\n") + "\n"


def read_results(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``comparison.json`` (in ``folder`` or ``folder/comparison``) and ``demo.json`` (None when absent).

    Raises:
        ValueError: no comparison.json there.
    """
    folder = Path(folder)
    path = folder / "comparison.json"
    if not path.is_file():
        path = folder / "comparison" / "comparison.json"
    if not path.is_file():
        raise ValueError(f"no comparison.json in {folder} (run `ess demo` or `ess bench --compare` first)")
    demo_path = folder / "demo.json"
    return json.loads(path.read_text()), (json.loads(demo_path.read_text()) if demo_path.is_file() else None)


def copy_results(demo_out: str | os.PathLike, results: str | os.PathLike) -> list[Path]:
    """Copy what a demo run shows into a results folder (e.g. ``benchmarks/results/ess_cpu``): the comparison
    (JSON, Markdown, PNG), ``demo.json`` and each run's bench report as ``runs/<run>.json``.

    Returns:
        The files written.
    """
    src, dst = Path(demo_out), Path(results)
    (dst / "runs").mkdir(parents=True, exist_ok=True)
    pairs = [(src / "comparison" / name, dst / name) for name in ("comparison.json", "comparison.md", "comparison.png")]
    pairs.append((src / "demo.json", dst / "demo.json"))
    pairs += [(run / "bench" / "bench.json", dst / "runs" / f"{run.name}.json") for run in sorted((src / "runs").iterdir())
              if (run / "bench" / "bench.json").is_file()]
    for a, b in pairs:
        atomic_write(b, a.read_bytes())
    return [b for _, b in pairs]
