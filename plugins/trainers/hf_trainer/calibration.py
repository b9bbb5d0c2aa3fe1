"""Calibration batches for techniques that initialise from the data (`TechniqueContext.calibration`).

LoRA's EVA (SVD of each layer's inputs) and CorDA (their covariance) need a few
forward passes over the task's own examples before training starts. The trainer
offers them as a callable, so techniques that never ask cost nothing: a fixed,
seeded draw of training examples, reduced to the model's inputs and padded by
the run's own collator, in batches of the run's batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: examples drawn for calibration: enough for stable statistics on small models (EVA's
#: incremental SVD converges within a few batches), a few seconds of forward passes on a CPU
CALIBRATION_EXAMPLES = 256
# columns the collator turns into the model's `labels`
LABEL_COLUMNS = ("label", "label_ids", "labels")


def calibration_source(
    dataset: Any, collator: Any, model: Any, batch_size: int, seed: int
) -> Callable[[], list[dict[str, Any]]]:
    """The callable a technique calls for its calibration batches (drawn when first called)."""
    inputs = model_inputs(model)

    def batches() -> list[dict[str, Any]]:
        return calibration_batches(dataset, collator, inputs, batch_size, seed)

    return batches


def model_inputs(model: Any) -> set[str]:
    """The columns a model's forward takes, as the Trainer decides which columns to keep."""
    import inspect

    return set(inspect.signature(model.forward).parameters) | set(LABEL_COLUMNS)


def calibration_batches(
    dataset: Any,
    collator: Any,
    inputs: set[str],
    batch_size: int,
    seed: int,
    examples: int = CALIBRATION_EXAMPLES,
) -> list[dict[str, Any]]:
    """Up to `examples` seeded training rows, collated into batches of `batch_size`."""
    import numpy as np

    count = min(examples, len(dataset))
    if count == 0:
        raise ValueError("calibration needs training examples, and the training split is empty")
    chosen = np.random.default_rng(seed).permutation(len(dataset))[:count]
    rows = dataset.select(sorted(int(i) for i in chosen))
    rows = rows.remove_columns([c for c in rows.column_names if c not in inputs])
    size = max(1, int(batch_size))
    # plain dicts: peft's EVA refuses the collator's BatchEncoding
    return [
        dict(collator([rows[i] for i in range(start, min(start + size, count))]))
        for start in range(0, count, size)
    ]
