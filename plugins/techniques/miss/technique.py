"""MiSS: one trained shard matrix shared across each target weight, through peft's MissConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique

# the manifest's names for peft's init_weights values (True is peft's default, "balance")
INIT_WEIGHTS = {"balance": True, "bat": "bat", "mini": "mini"}


class MiSS(PeftTechnique):
    # MiniLM, 1,000 rows of rotten tomatoes, 1 epoch, batch 32, validation accuracy:
    # 1e-3 .64, 3e-3 .74, 1e-2 .50 (diverged); docs/results/rotten_tomatoes/lr_sweeps_new_techniques.md
    default_learning_rate = 3e-3
    peft_config_name = "MissConfig"

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        kwargs = super().peft_kwargs(model, ctx)
        kwargs["init_weights"] = INIT_WEIGHTS[ctx.params["init_weights"]]
        return kwargs
