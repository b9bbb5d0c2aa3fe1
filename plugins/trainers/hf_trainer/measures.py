"""What a run measures besides the loss: classification scores, memory, sizes on disk."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np


def classification_metrics(eval_pred: Any) -> dict[str, float]:
    """Accuracy and macro-F1 from a transformers EvalPrediction (predictions already argmax-ed)."""
    from sklearn.metrics import accuracy_score, f1_score

    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    if predictions.ndim > 1:
        predictions = predictions.argmax(-1)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1_macro": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


def logits_to_classes(logits: Any, labels: Any) -> Any:
    """Keep only the predicted class per example, so evaluation does not hold every logit."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(-1)


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
