"""Scores of predictions against references: classification and generated text, each with
its noise (standard error and a bootstrap interval), so two runs can be told apart or called
a tie.

Classification scores come from scikit-learn (accuracy, macro-F1, per-class
precision/recall/F1, confusion matrix); expected calibration error is the usual
equal-width-bins estimate (15 bins, top-class confidence). Text scores come from
rouge-score (per example, so they can be bootstrapped) and exact match after
whitespace and case folding. The bootstrap is a percentile interval over
`BOOTSTRAP_SAMPLES` resamples with a fixed seed, so the same predictions always
give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

ECE_BINS = 15
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A score with its standard error and a bootstrap interval (`CONFIDENCE` level)."""

    value: float
    stderr: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.stderr:.4f} [{self.low:.4f}, {self.high:.4f}]"


def mean_interval(values: Sequence[float], *, seed: int = SEED) -> Interval:
    """Mean of per-example values with its standard error and a percentile bootstrap interval."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(0.0, 0.0, 0.0, 0.0)
    mean = float(data.mean())
    stderr = float(data.std(ddof=1) / math.sqrt(data.size)) if data.size > 1 else 0.0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, data.size, size=(BOOTSTRAP_SAMPLES, data.size))
    means = data[draws].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(mean, stderr, float(low), float(high))


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class ClassificationScores:
    """What a classifier scored on one labelled set."""

    accuracy: Interval
    f1_macro: float
    per_class: list[ClassScores]
    #: rows: true label, columns: predicted label, in `labels` order
    confusion: list[list[int]]
    labels: list[str]
    ece: float
    examples: int
    extra: dict[str, float] = field(default_factory=dict)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Share-weighted gap between confidence and accuracy over equal-width confidence bins."""
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    # bin i holds confidences in (edges[i], edges[i+1]]; a confidence of 0 joins the first bin
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, ECE_BINS - 1)
    total = 0.0
    for index in range(ECE_BINS):
        inside = bins == index
        if inside.any():
            gap = abs(float(correct[inside].mean()) - float(confidence[inside].mean()))
            total += inside.mean() * gap
    return float(total)


def classification_scores(
    labels: Sequence[int], probabilities: np.ndarray, label_names: Sequence[str]
) -> ClassificationScores:
    """Scores of class probabilities (rows: examples) against integer labels."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    truth = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(label_names)))
    correct = (predicted == truth).astype(float)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=classes, zero_division=0
    )
    per_class = [
        ClassScores(str(name), float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(label_names, precision, recall, f1, support, strict=True)
    ]
    return ClassificationScores(
        accuracy=mean_interval(correct),
        f1_macro=float(
            f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)
        ),
        per_class=per_class,
        confusion=confusion_matrix(truth, predicted, labels=classes).tolist(),
        labels=[str(n) for n in label_names],
        ece=expected_calibration_error(probabilities.max(axis=1), correct),
        examples=int(truth.size),
    )


def confidently_wrong(
    labels: Sequence[int], probabilities: np.ndarray, count: int
) -> list[tuple[int, int, float]]:
    """(row, predicted class, its probability) of the `count` most confident wrong predictions."""
    probabilities = np.asarray(probabilities, dtype=float)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = [i for i in range(len(labels)) if predicted[i] != labels[i]]
    wrong.sort(key=lambda i: -confidence[i])
    return [(i, int(predicted[i]), float(confidence[i])) for i in wrong[:count]]


# generated text -------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(str(text).lower().split())


def exact_matches(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """1.0 where the prediction equals the reference after case and whitespace folding."""
    return [
        float(normalise(p) == normalise(r)) for p, r in zip(predictions, references, strict=True)
    ]


def rouge_per_example(
    predictions: Sequence[str], references: Sequence[str]
) -> dict[str, list[float]]:
    """ROUGE-1/2/L F-measures per example, with stemming (their means are sdk.textgen's scores)."""
    from rouge_score import rouge_scorer

    keys = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=True)
    out: dict[str, list[float]] = {key: [] for key in keys}
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)
        for key in keys:
            out[key].append(scores[key].fmeasure)
    return out


def is_tie(a: Interval, b: Interval, z: float = 1.96) -> bool:
    """True when two scores differ by less than `z` standard errors of their difference."""
    spread = math.sqrt(a.stderr**2 + b.stderr**2)
    return abs(a.value - b.value) <= z * spread
