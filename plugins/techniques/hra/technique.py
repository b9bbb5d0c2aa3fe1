"""HRA: a chain of learned Householder reflections on each target layer, through peft's HRAConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique


class HRA(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 1e-3 .50, 3e-3 .52, 1e-2 .72, 3e-2 .76, 1e-1 .67;
    # docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 3e-2
    peft_config_name = "HRAConfig"

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        # manifest param names are lowercase identifiers: apply_gs is peft's apply_GS
        return {**super().peft_kwargs(model, ctx), "apply_GS": ctx.params["apply_gs"]}
