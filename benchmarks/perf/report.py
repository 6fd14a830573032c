"""The performance suite's report, read and written: ``perf.json`` + ``perf.md`` (:func:`write_results`), its
figures and failed sections, the Markdown of ``perf.md`` (:func:`to_markdown`) and the README's performance
block (:func:`update_readme`).

A report is the dictionary :func:`benchmarks.perf.suite.run_suite` returns; nothing here changes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envsim.provenance import atomic_write


def write_results(out: str | os.PathLike, stem: str, report: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write a benchmark's JSON report and Markdown table into ``out`` (created) as ``<stem>.json`` and
    ``<stem>.md``, atomically.

    Returns:
        The two paths.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    atomic_write(json_path, json.dumps(report, indent=2) + "\n")
    atomic_write(md_path, markdown)
    return json_path, md_path


def figures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure of a suite report, section by section."""
    return [f for s in report["sections"].values() for f in s.get("figures", [])]


def failed_checks(obj: Any, path: str = "") -> list[str]:
    """Every check flag of a benchmark report that came out false: a key ending in ``_match`` or ``_matches``
    whose value is False, at any depth, as ``path.to.key`` (with the ``*_check`` text next to it when there is one)."""
    out = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = f"{path}.{key}" if path else str(key)
            if (key.endswith("_match") or key.endswith("_matches")) and value is False:
                why = obj.get(key.rsplit("_", 1)[0] + "_check")
                out.append(where + (f" ({why})" if why else ""))
            else:
                out += failed_checks(value, where)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += failed_checks(value, f"{path}[{i}]")
    return out


def failures(report: dict[str, Any]) -> list[str]:
    """Sections that failed, as 'name: error' lines."""
    return [f"{name}: {s.get('error')}" for name, s in report["sections"].items() if s["status"] == "error"]


# --- Markdown ------------------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    """A value with as many digits as its size deserves ("-" for None)."""
    if value is None:
        return "-"
    a = abs(value)
    if a >= 100:
        return f"{value:,.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1 or a == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def summary_table(report: dict[str, Any]) -> str:
    """The one table of every figure: value, same-run reference, ratio, target, pass."""
    lines = [
        "| section | figure | value | reference (measured in the same run unless marked extrapolated) | ratio | target | pass |",
        "| --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for f in figures(report):
        verdict = "-" if f["pass"] is None else "yes" if f["pass"] else "**no**"
        unit = f" {f['unit']}" if f["unit"] else ""
        merged = (report["sections"].get(f["section"]) or {}).get("merged_from_run")
        name = f"{f['section']} (merged: run of {merged})" if merged else f["section"]
        lines.append(
            f"| {name} | {f['figure']} | {_num(f['value'])}{unit} "
            f"| {f['reference']}: {_num(f['reference_value'])}{unit} "
            f"| {f['ratio']:.2f} | {f['target'] or '-'} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def _header(report: dict[str, Any]) -> str:
    """One line: the run's mode, start, duration, machine, code version and library versions."""
    m, v = report["machine"], report["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in v)
    dirty = " (**uncommitted changes**: no commit reproduces these figures)" if m["code_version"].endswith(".dirty") else ""
    merged = [n for n, s in report["sections"].items() if s.get("merged_from_run")]
    scope = f"; sections {', '.join(merged)} merged from earlier runs (see below)" if merged else ""
    return (
        f"{report['mode'].capitalize()} run of {report['started']} ({report['seconds']:.0f} s), {m['cores']} cores "
        f"({m['cpu']}), Python {m['python']}, code {m['code_version']}{dirty}{scope}; {libs}."
    )


def _notes(report: dict[str, Any]) -> list[str]:
    """Markdown list items: skipped and failed sections (and parts), and sections measured on a busy machine."""
    notes = []
    for name, s in report["sections"].items():
        if s.get("merged_from_run"):
            notes.append(f"- {name}: merged from the run of {s['merged_from_run']}, code {s.get('merged_code_version')}"
                         " (not measured in this run)")
        if s["status"] == "skipped":
            notes.append(f"- {name}: skipped: {s['reason']}")
        elif s["status"] == "error":
            notes.append(f"- {name}: **failed**: {s['error']}")
        for part, reason in (s.get("skipped_parts") or {}).items():
            notes.append(f"- {name} ({part}): skipped: {reason}")
        load = s.get("load_average")
        if load and s["status"] == "ok" and max(load) > 1.5 * report["machine"]["cores"]:
            notes.append(f"- {name}: the machine was busy (load average {load[0]:.1f} -> {load[1]:.1f} on "
                         f"{report['machine']['cores']} cores); its figures are noisier")
    return notes


def to_markdown(report: dict[str, Any]) -> str:
    """``perf.md``: the header, the summary table, notes (skipped / failed sections), each section's own table."""
    parts = ["# Performance suite", "", _header(report), "", summary_table(report)]
    notes = _notes(report)
    if notes:
        parts += ["\n".join(notes), ""]
    for name, s in report["sections"].items():
        if s.get("markdown"):
            parts += [f"## {name}", "", s["markdown"].rstrip("\n"), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def readme_block(report: dict[str, Any]) -> str:
    """What goes between the README markers: header line, summary table, notes, the command."""
    parts = [_header(report), "", summary_table(report).rstrip("\n")]
    notes = _notes(report)
    if notes:
        parts += ["", "\n".join(notes)]
    command = (
        "Generated from `benchmarks/results/perf.json` by `ess bench-perf --readme README.md` "
        "(`--no-run` redraws it without measuring); `perf.md` next to it holds each section's own table."
    )
    parts += ["", command]
    return "\n".join(parts) + "\n"


def update_readme(path: str | os.PathLike, report: dict[str, Any]) -> None:
    """Replace what lies between ``<!-- perf:begin -->`` and ``<!-- perf:end -->`` in ``path`` by
    :func:`readme_block`; everything outside the markers stays byte for byte.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    from benchmarks.readme import replace_section

    replace_section(path, "perf", readme_block(report))
