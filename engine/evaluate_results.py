"""What an evaluation of one run found, as typed records that round-trip through JSON.

`RunEvaluation` is what `engine.evaluate.evaluate_runs` returns and what
`evaluations/<data-hash>.json` in the run folder holds; `read_evaluations`
gives them back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.metrics import ClassScores, Interval
from kernel.runs import RunFolder, atomic_write_json

EVALUATIONS_DIR = "evaluations"
FORMAT = 1


@dataclass(frozen=True)
class WrongExample:
    """A confidently wrong prediction: the text, its true label, the prediction and its probability."""

    text: str
    label: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class GeneratedOutput:
    """One generation beside its reference, with its per-example scores."""

    input: str
    reference: str
    output: str
    rougeL: float
    exact: bool
    bertscore_f1: float | None = None


@dataclass
class RunEvaluation:
    """One run scored on one data set.

    `metrics` holds the headline numbers, flat (classification: accuracy,
    accuracy_stderr, accuracy_low, accuracy_high, f1_macro, ece; generation:
    rouge1, rouge2, rougeL, bertscore_precision/recall/f1, perplexity,
    exact_match; both: samples_per_s, latency_ms, examples). `intervals` holds
    each score that has a standard error and a bootstrap interval.
    """

    run_id: str
    task: str
    data: str
    data_hash: str
    examples: int
    metrics: dict[str, Any]
    intervals: dict[str, Interval] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    per_class: list[ClassScores] = field(default_factory=list)
    #: rows: true label, columns: predicted label, in `labels` order
    confusion: list[list[int]] = field(default_factory=list)
    wrong: list[WrongExample] = field(default_factory=list)
    outputs: list[GeneratedOutput] = field(default_factory=list)
    #: BERTScore's scorer ({"model": ..., "layer": ...}): scores compare only under one scorer
    scorer: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: the run's adapter was switched in on a base model shared with other runs
    shared_base: bool = False
    created: float = 0.0
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> RunEvaluation:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["intervals"] = {k: Interval(**v) for k, v in data.get("intervals", {}).items()}
        fields["per_class"] = [ClassScores(**c) for c in data.get("per_class", [])]
        fields["wrong"] = [WrongExample(**w) for w in data.get("wrong", [])]
        fields["outputs"] = [GeneratedOutput(**o) for o in data.get("outputs", [])]
        return cls(**fields, path=path)

    def score(self, metric: str) -> Interval | None:
        """The metric with its noise, or without (stderr 0) when it has no interval."""
        if metric in self.intervals:
            return self.intervals[metric]
        value = self.metrics.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Interval(float(value), 0.0, float(value), float(value))
        return None


def evaluation_file(run: RunFolder, data_hash: str) -> Path:
    return run.path / EVALUATIONS_DIR / f"{data_hash}.json"


def write_evaluation(run: RunFolder, evaluation: RunEvaluation) -> Path:
    """evaluations/<data-hash>.json in the run folder, written atomically."""
    path = evaluation_file(run, evaluation.data_hash)
    atomic_write_json(path, evaluation.to_dict())
    evaluation.path = path
    return path


def read_evaluations(run: RunFolder) -> list[RunEvaluation]:
    """Every evaluation stored in a run folder, newest first; unreadable files are skipped."""
    found = []
    for path in sorted((run.path / EVALUATIONS_DIR).glob("*.json")):
        try:
            found.append(RunEvaluation.from_dict(json.loads(path.read_text("utf-8")), path))
        except (OSError, ValueError, TypeError, KeyError):
            continue  # a damaged file: the run still lists
    return sorted(found, key=lambda e: -e.created)


def find_evaluation(run: RunFolder, data_hash: str) -> RunEvaluation | None:
    """The run's evaluation of the data with this hash (a prefix is enough), if any."""
    for evaluation in read_evaluations(run):
        if evaluation.data_hash.startswith(data_hash):
            return evaluation
    return None
