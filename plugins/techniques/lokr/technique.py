"""LoKr: Kronecker-product updates, through peft's LoKrConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.peft_utils import PeftTechnique, peft_task_type


class LoKr(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 2e-3 .78, 5e-3 .79, 1e-2 .80/.80, 2e-2 .77, 5e-2 diverges (.49)
    default_learning_rate = 1e-2

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
