"""Prompt tuning: trained soft-prompt embeddings, through peft's PromptTuningConfig.

Initialising from text needs the model's tokenizer: peft loads it from the
model's folder or hub id (`TechniqueContext.model_name_or_path`, else the
`name_or_path` the model was loaded from), at apply time and again when the
adapter is reloaded.
"""

from __future__ import annotations

from typing import Any

from sdk import TechniqueContext
from sdk.peft_utils import PeftTechnique, model_name_or_path, peft_task_type, prompt_learning_dims


class PromptTuning(PeftTechnique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 1e-2 .70, 3e-2 .73/.72, 1e-1 .74/.75, 3e-1 .73
    default_learning_rate = 1e-1

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit

        p = ctx.params
        text_init = {}
        if p["init"] == "text":
            tokenizer = model_name_or_path(model, ctx)
            if not tokenizer:
                raise ValueError(
                    "prompt tuning from text needs the model's tokenizer, but neither the run nor "
                    "the model says where it came from; use init: random"
                )
            if not p.get("init_text"):
                raise ValueError("init: text needs a non-empty init_text")
            text_init = {
                "prompt_tuning_init": PromptTuningInit.TEXT,
                "prompt_tuning_init_text": p["init_text"],
                "tokenizer_name_or_path": tokenizer,
            }
        return PromptTuningConfig(
            task_type=peft_task_type(ctx),
            num_virtual_tokens=p["num_virtual_tokens"],
            **prompt_learning_dims(model),
            **(text_init or {"prompt_tuning_init": PromptTuningInit.RANDOM}),
        )
