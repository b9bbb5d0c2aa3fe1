"""Comparison reports: one row per technique, from run folders, as Markdown, CSV and PNG plots.

`peftlab compare` and bench/compare_rotten_tomatoes.py write their reports
with `write_report`; the app's compare page can reuse `rows_from_runs` and
`report_table`. Everything here reads run folders only (recipe.yaml,
status.json, results.json, metrics.jsonl), so a report can be rebuilt at any
time from the runs it names. matplotlib is imported inside the plot function
with the Agg backend: no display is needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.report_plots import PLOT_FILES, front_labels, write_plots
from engine.report_rows import (
    COLUMNS,
    ReportRow,
    failed_row,
    row_choice,
    row_from_run,
    row_metric,
    rows_from_runs,
    unique_labels,
)
from engine.report_text import choosing_lines, held_out_lines, markdown, report_csv, report_table
from kernel.runs import RunFolder, atomic_write_text

#: the report's parts live in engine.report_rows, report_text and report_plots; their public
#: names are importable from here too
__all__ = [
    "COLUMNS",
    "PLOT_FILES",
    "ReportFiles",
    "ReportRow",
    "choosing_lines",
    "failed_row",
    "front_labels",
    "held_out_lines",
    "markdown",
    "report_csv",
    "report_table",
    "row_choice",
    "row_from_run",
    "row_metric",
    "rows_from_runs",
    "run_settings",
    "settings_diff",
    "unique_labels",
    "write_plots",
    "write_report",
]


# the report folder -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    markdown: Path
    csv: Path
    plots: list[Path]


def write_report(
    rows: Sequence[ReportRow],
    out_dir: Path,
    *,
    title: str = "Technique comparison",
    command: str | None = None,
    notes: str | None = None,
) -> ReportFiles:
    """report.md, report.csv, compare.json and the PNGs in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = unique_labels(list(rows))
    plots = write_plots(rows, out_dir)
    csv_path = out_dir / "report.csv"
    md_path = out_dir / "report.md"
    atomic_write_text(csv_path, report_csv(rows))
    atomic_write_text(
        md_path,
        markdown(rows, title=title, command=command, notes=notes, plots=[p.name for p in plots]),
    )
    index = {
        "title": title,
        "command": command,
        "rows": [
            {
                "technique": r.technique,
                "label": r.label,
                "status": r.status,
                "run_id": r.run_id,
                "error": r.error,
            }
            for r in rows
        ],
    }
    atomic_write_text(out_dir / "compare.json", json.dumps(index, indent=2) + "\n")
    return ReportFiles(out_dir, md_path, csv_path, plots)


# settings diff ------------------------------------------------------------------------------


def run_settings(run: RunFolder) -> dict[str, Any]:
    """kind -> plugin id, kind version, and kind.param -> value (effective where resolved)."""
    from engine import effective

    record = run.recipe()
    resolved = effective.for_run(run)
    flat: dict[str, Any] = {}
    for kind in ("dataset", "model", "technique", "trainer"):
        entry = record.get(kind) or {}
        flat[kind] = entry.get("id")
        flat[f"{kind} version"] = entry.get("version")
        for name, value in (entry.get("params") or {}).items():
            flat[f"{kind}.{name}"] = value
    for key, value in resolved.items():
        recorded = flat.get(key)
        if recorded != value:  # a placeholder, or a recorded value the trainer changed
            flat[key] = effective.describe(recorded, value)
    return flat


def settings_diff(settings: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """setting -> one cell per run, for the settings whose values differ between the runs."""
    keys = sorted({k for flat in settings.values() for k in flat})
    rows: dict[str, list[str]] = {}
    for key in keys:
        values = [settings[name].get(key, "—") for name in settings]
        if len({repr(v) for v in values}) > 1:
            rows[key] = [", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in values]
    return rows
