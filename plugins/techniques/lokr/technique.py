"""LoKr: Kronecker-product updates, through peft's LoKrConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.peft_utils import PeftTechnique, peft_task_type


class LoKr(PeftTechnique):
    default_learning_rate = 2e-3

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import LoKrConfig

        p = ctx.params
        return LoKrConfig(
            task_type=peft_task_type(ctx),
            r=p["r"],
            alpha=p["alpha"],
            decompose_both=p["decompose_both"],
            decompose_factor=p["decompose_factor"],
            rank_dropout=p["rank_dropout"],
            module_dropout=p["module_dropout"],
            target_modules=resolve_target_modules(p["target_modules"], ctx.facts),
        )
