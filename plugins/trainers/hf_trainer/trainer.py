"""The hf_trainer bundle's entry: the `TrainerPlugin` that runs the training pipeline.

The work is in pipeline.py (the sequence every task follows) and the task steps
(classification.py, generation.py); see those modules.
"""

from __future__ import annotations

from typing import Any

from sdk import RunContext, TrainerPlugin

# importing the entry stays as cheap as the SDK: the pipeline (transformers, numpy) loads in run()
from .arguments import planned_steps

__all__ = ["HFTrainer", "planned_steps"]


class HFTrainer(TrainerPlugin):
    """transformers' Trainer for sequence classification, causal LMs and seq2seq models."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from .pipeline import run_pipeline

        return run_pipeline(ctx)
