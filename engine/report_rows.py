"""The rows of a comparison report: one per technique, read from its run folder, and the choice
among the completed ones (engine.choose)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.evaluate_results import read_evaluations
from kernel.runs import RunFolder, RunRecord

#: report.csv columns, in order (run_id and error come last)
COLUMNS = (
    "technique",
    "status",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
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


#: columns read from the run's held-out evaluations rather than its results.json
HELD_OUT = ("accuracy_low", "accuracy_high")


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
        if column in HELD_OUT:
            return self.held_out(column)
        return self.results.get(column)

    def held_out(self, column: str) -> float | None:
        """A bound of the 95 % bootstrap interval of accuracy, from the newest held-out
        evaluation that scored accuracy (`peftlab evaluate`); None before any."""
        for evaluation in self.evaluations:
            score = evaluation.score("accuracy")
            if score is not None and score.stderr:
                return score.low if column == "accuracy_low" else score.high
        return None


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
