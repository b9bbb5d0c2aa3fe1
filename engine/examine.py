"""Examine a finished run on its validation split: where a classifier goes wrong, or how a
generator's outputs compare with the references.

`classification_report` and `generation_report` are pure functions over
predictions (tested without a model); `examine_run` rebuilds the run's trained
model (engine.inference), predicts the first `limit` validation rows and hands
them to one of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.plugins import load_plugin
from kernel.runs import RunFolder

DEFAULT_LIMIT = 500
WORST_COUNT = 10


@dataclass
class ClassReport:
    """Confusion matrix (rows: true label, columns: predicted), per-class scores, worst rows."""

    label_names: list[str]
    confusion: list[list[int]]
    per_class: list[dict[str, Any]]
    accuracy: float
    worst: list[dict[str, Any]] = field(default_factory=list)
    examples: int = 0


@dataclass
class GenerationReport:
    """Each example's output next to its reference, lowest ROUGE-L first."""

    rows: list[dict[str, Any]]
    mean_rouge_l: float
    examples: int = 0


def classification_report(
    texts: Sequence[str],
    true: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    label_names: Sequence[str],
    worst: int = WORST_COUNT,
) -> ClassReport:
    """Scores of predictions: `probabilities` holds one row of class probabilities per text."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(label_names)))
    predicted = [max(labels, key=row.__getitem__) for row in probabilities]
    matrix = confusion_matrix(true, predicted, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    per_class = [
        {
            "label": label_names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in labels
    ]
    wrong = [
        {
            "text": texts[i],
            "label": label_names[true[i]],
            "predicted": label_names[predicted[i]],
            "confidence": float(probabilities[i][predicted[i]]),
        }
        for i in range(len(texts))
        if predicted[i] != true[i]
    ]
    wrong.sort(key=lambda row: -float(row["confidence"]))  # type: ignore[arg-type]  # confidently wrong first
    correct = sum(1 for p, t in zip(predicted, true, strict=True) if p == t)
    return ClassReport(
        label_names=list(label_names),
        confusion=matrix.tolist(),
        per_class=per_class,
        accuracy=correct / len(true) if true else 0.0,
        worst=wrong[:worst],
        examples=len(texts),
    )


def generation_report(
    inputs: Sequence[str], references: Sequence[str], outputs: Sequence[str]
) -> GenerationReport:
    """Per-example ROUGE-L of each output against its reference (rouge-score, stemmed)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rows = [
        {
            "input": source,
            "reference": reference,
            "output": output,
            "rougeL": float(scorer.score(reference, output)["rougeL"].fmeasure),
        }
        for source, reference, output in zip(inputs, references, outputs, strict=True)
    ]
    scores = [float(r["rougeL"]) for r in rows]  # type: ignore[arg-type]
    mean = sum(scores) / len(scores) if scores else 0.0
    rows.sort(key=lambda row: float(row["rougeL"]))  # type: ignore[arg-type]
    return GenerationReport(rows=rows, mean_rouge_l=mean, examples=len(rows))


def validation_split(run: RunFolder) -> tuple[Any, dict[str, Any]]:
    """The run's validation split as its dataset bundle loads it, and the dataset section."""
    from sdk.context import DatasetContext

    record = run.recipe()
    handle = load_plugin("dataset", record["dataset"], run.path)
    section = handle.manifest.get("dataset") or {}
    splits = handle.instance.load(
        DatasetContext(
            params=dict(handle.params),
            bundle_dir=Path(handle.bundle_dir),
            task=section.get("task", "sequence-classification"),
            label_names=list(section.get("label_names") or []),
            text_fields=list(section.get("text_fields") or ["text"]),
            label_field=section.get("label_field", "label"),
            seed=int(((record.get("trainer") or {}).get("params") or {}).get("seed", 42)),
        )
    )
    return splits.validation, {**section, "task": getattr(splits, "task", section.get("task"))}


def examine_run(run: RunFolder, limit: int = DEFAULT_LIMIT) -> ClassReport | GenerationReport:
    """Predict the first `limit` validation rows with the run's trained model and report."""
    from engine.inference import is_generation_run, load_classifier, load_generator
    from engine.rebuild import quiet_loading
    from sdk.textgen import pair_columns

    validation, section = validation_split(run)
    rows = validation.select(range(min(limit, len(validation))))
    with quiet_loading():
        if is_generation_run(run):
            generator = load_generator(run)
            source, target = pair_columns(generator.task)
            outputs = generator.generate(list(rows[source]))
            return generation_report(list(rows[source]), list(rows[target]), outputs)
        classifier = load_classifier(run)
    texts = [str(t) for t in rows["text"]]
    predictions = classifier.predict(texts)
    names = classifier.label_names
    probabilities = [[p.probabilities.get(n, 0.0) for n in names] for p in predictions]
    return classification_report(texts, list(rows["label"]), probabilities, names)
