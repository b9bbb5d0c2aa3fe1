"""P-tuning: prompt embeddings from a trained prompt encoder, through peft's PromptEncoderConfig
(params named as its fields)."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique, prompt_learning_dims


class PTuning(PeftTechnique):
    # MiniLM, 1 epoch of the whole rotten tomatoes training split, batch 32, validation
    # accuracy: 3e-3 .646, 1e-2 .766, 3e-2 .687, 1e-1 .685
    # (docs/results/rotten_tomatoes/lr_sweep_p_tuning); on 2,000 rows the rates were within
    # seed noise of each other, like most prompt methods on a small encoder
    default_learning_rate = 1e-2
    peft_config_name = "PromptEncoderConfig"

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        return {**super().peft_kwargs(model, ctx), **prompt_learning_dims(model)}
