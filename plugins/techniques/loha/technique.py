"""LoHa: low-rank Hadamard product updates, through peft's LoHaConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.peft_utils import PeftTechnique, peft_task_type


class LoHa(PeftTechnique):
    # an update of rank up to r^2 from rank-r factors: a LoRA-like rate suits it
    default_learning_rate = 2e-3

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import LoHaConfig

        p = ctx.params
        return LoHaConfig(
            task_type=peft_task_type(ctx),
            r=p["r"],
            alpha=p["alpha"],
            rank_dropout=p["rank_dropout"],
            module_dropout=p["module_dropout"],
            target_modules=resolve_target_modules(p["target_modules"], ctx.facts),
        )
