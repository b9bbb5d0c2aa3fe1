"""P-tuning: prompt embeddings from a trained prompt encoder, through peft's PromptEncoderConfig."""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique, peft_task_type, prompt_learning_dims


class PTuning(PeftTechnique):
    # MiniLM, 1 epoch of the whole rotten tomatoes training split, batch 32, validation
    # accuracy: 3e-3 .646, 1e-2 .766, 3e-2 .687, 1e-1 .685
    # (docs/results/rotten_tomatoes/lr_sweep_p_tuning); on 2,000 rows the rates were within
    # seed noise of each other, like most prompt methods on a small encoder
    default_learning_rate = 1e-2

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import PromptEncoderConfig

        p = ctx.params
        return PromptEncoderConfig(
            task_type=peft_task_type(ctx),
            num_virtual_tokens=p["num_virtual_tokens"],
            encoder_reparameterization_type=p["encoder_reparameterization_type"],
            encoder_hidden_size=p["encoder_hidden_size"],
            encoder_num_layers=p["encoder_num_layers"],
            encoder_dropout=p["encoder_dropout"],
            **prompt_learning_dims(model),
        )
