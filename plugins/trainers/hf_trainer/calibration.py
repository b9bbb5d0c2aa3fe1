"""Calibration batches for techniques that initialise from the data (`TechniqueContext.calibration`).

LoRA's EVA (SVD of each layer's inputs) and CorDA (their covariance) need a few
forward passes over the task's own examples before training starts. The trainer
offers them as a callable, so techniques that never ask cost nothing: a fixed,
seeded draw of training examples, padded by the run's own collator as the Trainer
feeds them, in batches of the run's batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdk.tokenize import padded_batch

#: examples drawn for calibration: enough for stable statistics on small models (EVA's
#: incremental SVD converges within a few batches), a few seconds of forward passes on a CPU
CALIBRATION_EXAMPLES = 256


def calibration_source(
    dataset: Any, collator: Any, batch_size: int, seed: int
) -> Callable[[], list[dict[str, Any]]]:
    """The callable a technique calls for its calibration batches (drawn when first called)."""

    def batches() -> list[dict[str, Any]]:
        return calibration_batches(dataset, collator, batch_size, seed)

    return batches


def calibration_batches(
    dataset: Any, collator: Any, batch_size: int, seed: int, examples: int = CALIBRATION_EXAMPLES
) -> list[dict[str, Any]]:
    """Up to `examples` seeded rows of a tokenized training split, in padded batches."""
    import numpy as np

    count = min(examples, len(dataset))
    if count == 0:
        raise ValueError("calibration needs training examples, and the training split is empty")
    chosen = sorted(int(i) for i in np.random.default_rng(seed).permutation(len(dataset))[:count])
    size = max(1, int(batch_size))
    return [padded_batch(dataset, chosen[i : i + size], collator) for i in range(0, count, size)]
