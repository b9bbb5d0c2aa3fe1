"""VeRA: shared frozen random projections with trained scaling vectors, through peft's VeraConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique


class VeRA(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 2e-3 .70, 5e-3 .74, 1e-2 .78/.78, 2e-2 .78/.79, 5e-2 .79
    default_learning_rate = 2e-2
    peft_config_name = "VeraConfig"

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        # the manifest says `dropout`, as the other techniques do; peft calls it vera_dropout
        return {**super().peft_kwargs(model, ctx), "vera_dropout": ctx.params["dropout"]}
