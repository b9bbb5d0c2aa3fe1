"""The hf_trainer bundle's entry: the `TrainerPlugin` that runs the training pipeline.

The work is in pipeline.py (the sequence every task follows) and the task steps
(classification.py, generation.py); see those modules.
"""

from __future__ import annotations

from typing import Any

from sdk import RunContext, TrainerPlugin

from .arguments import planned_steps
from .saving import INFO_FILE, base_model_source

__all__ = ["INFO_FILE", "HFTrainer", "base_model_source", "planned_steps"]


class HFTrainer(TrainerPlugin):
    """transformers' Trainer for sequence classification, causal LMs and seq2seq models."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from .pipeline import run_pipeline

        return run_pipeline(ctx)
