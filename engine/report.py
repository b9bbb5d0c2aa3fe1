"""Comparison reports: one row per technique, from run folders, as Markdown, CSV and PNG plots.

`peftlab compare` and bench/compare_rotten_tomatoes.py write their reports
with `write_report`; the app's compare page can reuse `rows_from_runs` and
`report_table`. Everything here reads run folders only (recipe.yaml,
status.json, results.json, metrics.jsonl), so a report can be rebuilt at any
time from the runs it names. matplotlib is imported inside the plot function
with the Agg backend: no display is needed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.evaluate_results import read_evaluations
from kernel.runs import RunFolder, RunRecord, atomic_write_text

#: report.csv columns, in order (run_id and error come last)
COLUMNS = (
    "technique",
    "status",
    "accuracy",
    "f1_macro",
    "eval_loss",
    "trainable_params",
    "trainable_percent",
    "train_runtime_s",
    "train_samples_per_s",
    "peak_memory_mb",
    "model_footprint_mb",
    "adapter_size_mb",
    "baseline_accuracy",
    "learning_rate",
    "run_id",
    "error",
)

PLOT_FILES = {
    "accuracy_vs_trainable": "accuracy_vs_trainable.png",
    "train_time": "train_time.png",
    "peak_memory": "peak_memory.png",
    "loss_curves": "loss_curves.png",
}

# how report.md shows each numeric column
_FORMATS = {
    "accuracy": "{:.4f}",
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


@dataclass
class ReportRow:
    """One technique's outcome: a finished run, a failed run, or a recipe that never started."""

    technique: str
    status: str
    run_id: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    loss: list[tuple[int, float]] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    #: the run's held-out evaluations (engine.evaluate), newest first
    evaluations: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.label = self.label or self.technique

    @property
    def record(self) -> RunRecord:
        """The row's recipe, typed (empty fields for a recipe that is damaged)."""
        try:
            return RunRecord.model_validate(self.recipe)
        except ValidationError:
            return RunRecord()

    @property
    def completed(self) -> bool:
        return self.status == "completed" and bool(self.results)

    def value(self, column: str) -> Any:
        if column == "technique":
            return self.label
        if column == "status":
            return self.status
        if column == "run_id":
            return self.run_id
        if column == "error":
            return self.error
        return self.results.get(column)


def _short_error(text: str | None, limit: int = 300) -> str | None:
    if not text:
        return None
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def row_from_run(run: RunFolder) -> ReportRow:
    """The report row of a run folder, whatever state it is in."""
    recipe = run.recipe()
    technique = run.record().technique.id
    status = run.status()
    state = status.get("state", "pending")
    results = run.results() or {}
    if state == "completed" and not results:
        state, status["error"] = "failed", "completed without results.json"
    loss = [
        (int(r["step"]), float(r["loss"]))
        for r in run.metrics()
        if isinstance(r.get("loss"), int | float) and isinstance(r.get("step"), int | float)
    ]
    return ReportRow(
        technique=technique,
        status=state,
        run_id=run.id,
        results=results if state == "completed" else {},
        error=None if state == "completed" else _short_error(status.get("error") or state),
        loss=loss,
        recipe=recipe,
        evaluations=read_evaluations(run),
    )


def failed_row(technique: str, error: str, recipe: dict[str, Any] | None = None) -> ReportRow:
    """A technique refused before any run folder existed (incompatible, bad params)."""
    return ReportRow(technique, "failed", error=_short_error(error), recipe=recipe or {})


def rows_from_runs(runs: Iterable[RunFolder]) -> list[ReportRow]:
    return unique_labels([row_from_run(run) for run in runs])


def unique_labels(rows: list[ReportRow]) -> list[ReportRow]:
    """Give each row a distinct label: the technique, plus its learning rate or run id when repeated."""
    by_technique: dict[str, list[ReportRow]] = {}
    for row in rows:
        by_technique.setdefault(row.technique, []).append(row)
    for group in by_technique.values():
        if len(group) == 1:
            group[0].label = group[0].technique
            continue
        rates = [_learning_rate(r) for r in group]
        distinct_rates = None not in rates and len(set(rates)) == len(rates)
        for row, rate in zip(group, rates, strict=True):
            suffix = f"lr={rate:g}" if distinct_rates else (row.run_id or "not run")
            row.label = f"{row.technique} ({suffix})"
    return rows


def _learning_rate(row: ReportRow) -> float | None:
    if row.results.get("learning_rate") is not None:
        return float(row.results["learning_rate"])
    rate = row.record.trainer.params.get("learning_rate")
    return float(rate) if rate else None


# tables ---------------------------------------------------------------------------------


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


# choosing: the Pareto front and the recommendation (engine.choose) ----------------------


def row_metric(rows: Sequence[ReportRow]) -> str:
    """accuracy for classification reports, ROUGE-L when no completed row has an accuracy."""
    done = [r for r in rows if r.completed]
    return "accuracy" if any(r.results.get("accuracy") is not None for r in done) else "rougeL"


def row_choice(rows: Sequence[ReportRow], costs: Sequence[str] | None = None) -> Any:
    """engine.choose's Choice over the completed rows (front over `costs`; default: all)."""
    from engine.choose import COSTS, candidate, choose, mark_front, validation_score

    metric = row_metric(rows)
    candidates = [
        candidate(r.run_id or r.label, r.label, r.results, validation_score(r.results, metric))
        for r in rows
        if r.completed
    ]
    found = choose(candidates, metric)
    if costs is not None and tuple(costs) != tuple(COSTS):
        mark_front(found.candidates, metric, costs)
    return found


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


# plots -----------------------------------------------------------------------------------


def write_plots(rows: Sequence[ReportRow], out_dir: Path) -> list[Path]:
    """The four PNGs of a report; completed runs only. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    done = [r for r in rows if r.completed]
    written: list[Path] = []
    if not done:
        return written

    def save(fig: Any, key: str) -> None:
        path = out_dir / PLOT_FILES[key]
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    labels = [r.label for r in done]
    colours = [plt.get_cmap("tab20")(i % 20) for i in range(len(done))]

    # accuracy against the share of trainable parameters
    fig, ax = plt.subplots(figsize=(8, 5))
    points = [
        (r, r.results.get("trainable_percent"), r.results.get("accuracy"), c)
        for r, c in zip(done, colours, strict=True)
    ]
    points = [(r, x, y, c) for r, x, y, c in points if x and y is not None]
    for row, x, y, colour in points:
        ax.scatter([x], [y], color=colour, s=50, zorder=3)
        ax.annotate(row.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    _draw_front(ax, rows, points)
    baselines = sorted(
        r.results["baseline_accuracy"]
        for r in done
        if r.results.get("baseline_accuracy") is not None
    )
    if baselines:
        median = baselines[len(baselines) // 2]
        ax.axhline(
            median, color="grey", linestyle=":", linewidth=1, label="before training (median)"
        )
    if baselines or front_labels(rows):
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy against trainable share")
    ax.grid(True, which="both", alpha=0.3)
    save(fig, "accuracy_vs_trainable")

    def bars(key: str, column: str, xlabel: str, title: str) -> None:
        values = [r.results.get(column) or 0.0 for r in done]
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(done) + 1.5))
        ax.barh(labels, values, color=colours)
        for index, value in enumerate(values):
            ax.text(value, index, f" {value:,.0f}", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.margins(x=0.15)
        save(fig, key)

    bars("train_time", "train_runtime_s", "seconds", "Training time")
    bars("peak_memory", "peak_memory_mb", "MiB", "Peak memory while training")

    fig, ax = plt.subplots(figsize=(8, 5))
    for row, colour in zip(done, colours, strict=True):
        if row.loss:
            ax.plot(
                [s for s, _ in row.loss], [v for _, v in row.loss], label=row.label, color=colour
            )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax.grid(True, alpha=0.3)
    if any(r.loss for r in done):
        ax.legend(fontsize=8, ncol=2)
    save(fig, "loss_curves")
    return written


def front_labels(rows: Sequence[ReportRow]) -> list[str]:
    """Labels of the rows on the accuracy-vs-trainable-share front (the chart's two axes)."""
    if not any(r.completed for r in rows) or row_metric(rows) != "accuracy":
        return []
    found = row_choice(rows, costs=("trainable_percent",))
    return [c.label for c in found.candidates if c.on_front]


def _draw_front(ax: Any, rows: Sequence[ReportRow], points: list[tuple[Any, ...]]) -> None:
    """Ring the front's points and join them, left to right, with a dashed line."""
    labels = set(front_labels(rows))
    front = sorted((x, y) for row, x, y, _ in points if row.label in labels)
    if not front:
        return
    xs, ys = [x for x, _ in front], [y for _, y in front]
    ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
    ax.plot(xs, ys, color="black", linestyle="--", linewidth=1, zorder=2, label="Pareto front")


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
