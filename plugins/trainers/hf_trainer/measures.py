"""What a run measures besides the loss: classification scores, memory, sizes on disk."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np


def classification_metrics(eval_pred: Any) -> dict[str, float]:
    """Accuracy and macro-F1 from a transformers EvalPrediction (predictions already argmax-ed),
    and the mean loss when `logits_to_classes` kept each example's loss."""
    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    losses = None
    if isinstance(predictions, tuple):
        if len(predictions) == 2 and np.ndim(predictions[1]) == 1:
            losses = np.asarray(predictions[1])
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    if predictions.ndim > 1:
        predictions = predictions.argmax(-1)
    labels = np.asarray(labels)
    metrics = {
        "accuracy": float(np.mean(predictions == labels)) if len(labels) else 0.0,
        "f1_macro": macro_f1(labels, predictions),
        "examples": len(labels),  # scored once each, also when several processes evaluate
    }
    if losses is not None and len(losses) == len(labels):
        # the Trainer's own eval loss averages per-batch means, and under DDP counts the
        # examples a sampler repeats to even out the shards; this one is per example, exact
        metrics["loss"] = float(losses.mean())
    return metrics


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over the classes seen in labels or predictions (a class
    never predicted nor present scores 0, like scikit-learn's zero_division=0), in numpy:
    importing scikit-learn costs the training process about a second."""
    scores = []
    for cls in np.union1d(labels, predictions):
        tp = np.sum((predictions == cls) & (labels == cls))
        fp = np.sum((predictions == cls) & (labels != cls))
        fn = np.sum((predictions != cls) & (labels == cls))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def logits_to_classes(logits: Any, labels: Any) -> Any:
    """Keep only the predicted class per example (and its loss, when labels are known), so
    evaluation does not hold every logit."""
    import torch.nn.functional as F

    if isinstance(logits, tuple):
        logits = logits[0]
    classes = logits.argmax(-1)
    if labels is None or logits.ndim != 2 or labels.shape != classes.shape:
        return classes
    return classes, F.cross_entropy(logits.float(), labels.long(), reduction="none")


def peak_memory() -> tuple[float, str]:
    """(MiB, kind): CUDA's allocator high-water mark on GPU, else this process's peak RSS."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return (rss / 2**20 if sys.platform == "darwin" else rss / 2**10), "rss"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
