"""A comparison report as text: the CSV of its rows and report.md (setup, results table,
held-out evaluations, the choice, failures, technique settings, plots)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.report_rows import COLUMNS, ReportRow, row_choice

# how report.md shows each numeric column
_FORMATS = {
    "accuracy": "{:.4f}",
    "accuracy_low": "{:.4f}",
    "accuracy_high": "{:.4f}",
    "f1_macro": "{:.4f}",
    "eval_loss": "{:.4f}",
    "trainable_params": "{:,.0f}",
    "trainable_percent": "{:.4f}",
    "train_runtime_s": "{:,.1f}",
    "train_samples_per_s": "{:,.1f}",
    "peak_memory_mb": "{:,.0f}",
    "model_footprint_mb": "{:,.1f}",
    "adapter_size_mb": "{:,.3f}",
    "baseline_accuracy": "{:.4f}",
    "learning_rate": "{:g}",
}
_HEADINGS = {
    "technique": "technique",
    "status": "status",
    "accuracy": "accuracy",
    "accuracy_low": "held-out 95 % low",
    "accuracy_high": "held-out 95 % high",
    "f1_macro": "macro F1",
    "eval_loss": "eval loss",
    "trainable_params": "trainable params",
    "trainable_percent": "trainable %",
    "train_runtime_s": "train time (s)",
    "train_samples_per_s": "samples/s",
    "peak_memory_mb": "peak memory (MiB)",
    "model_footprint_mb": "model in memory (MiB)",
    "adapter_size_mb": "saved weights (MiB)",
    "baseline_accuracy": "accuracy before training",
    "learning_rate": "learning rate",
    "run_id": "run",
}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def report_csv(rows: Sequence[ReportRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(row.value(c)) for c in COLUMNS])
    return buffer.getvalue()


def _cell(row: ReportRow, column: str) -> str:
    value = row.value(column)
    if value is None:
        return "-"
    if column in _FORMATS and isinstance(value, int | float):
        return _FORMATS[column].format(value)
    return str(value).replace("|", "\\|")


def report_table(rows: Sequence[ReportRow]) -> str:
    """The Markdown table of every row (errors are listed below it, not in it)."""
    columns = [c for c in COLUMNS if c != "error"]
    lines = [
        "| " + " | ".join(_HEADINGS[c] for c in columns) + " |",
        "|"
        + "|".join("---" if c in ("technique", "status", "run_id") else "---:" for c in columns)
        + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, c) for c in columns) + " |")
    return "\n".join(lines)


def _common_settings(rows: Sequence[ReportRow]) -> list[str]:
    """Dataset, model and trainer settings, said once when every run shares them."""
    lines = []
    recipes = [r.recipe for r in rows if r.recipe]
    for kind in ("dataset", "model", "trainer"):
        seen = {
            json.dumps(
                {
                    "id": (rec.get(kind) or {}).get("id"),
                    "params": (rec.get(kind) or {}).get("params"),
                },
                sort_keys=True,
                default=str,
            )
            for rec in recipes
        }
        if len(seen) == 1:
            choice = json.loads(seen.pop())
            params = ", ".join(f"{k}={v}" for k, v in (choice["params"] or {}).items())
            lines.append(f"- {kind}: `{choice['id']}` ({params or 'defaults'})")
        elif seen:
            lines.append(f"- {kind}: differs between runs (see each run's recipe.yaml)")
    done = [r for r in rows if r.completed]
    if done:
        samples = {
            (r.results.get("num_train_samples"), r.results.get("num_eval_samples")) for r in done
        }
        if len(samples) == 1:
            train, evaluated = samples.pop()
            lines.append(f"- examples: {train} training, {evaluated} validation")
        devices = {r.results.get("device") for r in done if r.results.get("device")}
        if devices:
            lines.append(f"- device: {', '.join(sorted(map(str, devices)))}")
        kinds = {
            r.results.get("peak_memory_kind") for r in done if r.results.get("peak_memory_kind")
        }
        if kinds == {"rss"}:
            lines.append(
                "- peak memory is the training process's peak resident set size (CPU), "
                "so it includes Python, the libraries and the data, not only the model"
            )
    return lines


def _technique_settings(rows: Sequence[ReportRow]) -> list[str]:
    lines = []
    for row in rows:
        params = row.record.technique.params
        if params:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            lines.append(f"- {row.label}: {shown}")
    return lines


def markdown(
    rows: Sequence[ReportRow],
    *,
    title: str,
    command: str | None = None,
    notes: str | None = None,
    plots: Sequence[str] = (),
) -> str:
    out = [f"# {title}", ""]
    if command:
        out += ["Produced by:", "", "```", command, "```", ""]
    settings = _common_settings(rows)
    if settings:
        out += ["## Setup", "", *settings, ""]
    out += ["## Results", "", report_table(rows), ""]
    done = sorted((r for r in rows if r.completed), key=lambda r: -(r.results.get("accuracy") or 0))
    if done:
        ranking = ", ".join(f"{r.label} {r.results.get('accuracy', 0):.4f}" for r in done)
        out += [f"By accuracy: {ranking}.", ""]
    held_out = held_out_lines(rows)
    if held_out:
        out += ["## Held-out evaluations", "", *held_out, ""]
    choosing = choosing_lines(rows)
    if choosing:
        out += ["## Choosing", "", *choosing, ""]
    failed = [r for r in rows if not r.completed]
    if failed:
        out += ["## Did not complete", ""]
        out += [f"- **{r.label}** ({r.status}): {r.error or 'no error recorded'}" for r in failed]
        out += [""]
    technique_lines = _technique_settings(rows)
    if technique_lines:
        out += ["## Technique settings", "", *technique_lines, ""]
    if notes:
        out += [notes.strip(), ""]
    if plots:
        out += ["## Plots", ""]
        out += [f"![{Path(p).stem.replace('_', ' ')}]({Path(p).name})" for p in plots]
        out += [""]
    return "\n".join(out)


def held_out_lines(rows: Sequence[ReportRow]) -> list[str]:
    """One line per run and evaluated data set: the headline scores with their noise."""
    lines = []
    for row in rows:
        for e in row.evaluations:
            names = ("accuracy", "f1_macro", "ece") if "accuracy" in e.metrics else (
                "rougeL", "bertscore_f1", "perplexity", "exact_match")  # fmt: skip
            shown = []
            for name in names:
                score = e.score(name)
                if score is not None:
                    noise = f" ± {score.stderr:.4f}" if score.stderr else ""
                    shown.append(f"{name} {score.value:.4f}{noise}")
            scorer = (
                f"; BERTScore by {e.scorer['model']} layer {e.scorer['layer']}" if e.scorer else ""
            )
            lines.append(f"- {row.label} on {e.data} ({e.examples} rows, {e.data_hash}): "
                         + ", ".join(shown) + scorer)  # fmt: skip
    return lines


def choosing_lines(rows: Sequence[ReportRow]) -> list[str]:
    """The report's Choosing section: the front over every cost, then the recommendation."""
    if not any(r.completed for r in rows):
        return []
    found = row_choice(rows)
    front = [c.label for c in found.candidates if c.on_front]
    lines = [
        "Pareto front of validation "
        + found.metric
        + " against cost (trainable %, peak memory, train time, saved weights): "
        + (", ".join(front) if front else "none")
        + ". Standard errors of accuracy come from the number of validation rows.",
        "",
    ]
    return [*lines, found.sentence]
