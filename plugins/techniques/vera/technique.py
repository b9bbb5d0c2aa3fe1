"""VeRA: shared frozen random projections with trained scaling vectors, through peft's VeraConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.peft_utils import PeftTechnique, peft_task_type


class VeRA(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 2e-3 .70, 5e-3 .74, 1e-2 .78/.78, 2e-2 .78/.79, 5e-2 .79
    default_learning_rate = 2e-2

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import VeraConfig

        p = ctx.params
        return VeraConfig(
            task_type=peft_task_type(ctx),
            r=p["r"],
            target_modules=resolve_target_modules(p["target_modules"], ctx.facts),
            d_initial=p["d_initial"],
            vera_dropout=p["dropout"],
            projection_prng_key=p["projection_prng_key"],
            save_projection=p["save_projection"],
        )
