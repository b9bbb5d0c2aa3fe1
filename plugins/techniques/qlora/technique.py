"""QLoRA: LoRA on a 4-bit quantized base model (bitsandbytes + peft).

The quantization happens when the model is loaded: `model_load_kwargs` gives
the model plugin a `BitsAndBytesConfig`, and every code path that builds the
base model (training, and reloading a trained adapter) must pass it, so the
adapter always sits on the same quantized weights it was trained with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sdk import TechniqueContext, resolve_target_modules
from sdk.base import Technique
from sdk.peft_utils import (
    build_peft_model,
    head_modules,
    kbit_device_map,
    peft_task_type,
    release_checkpoint_map,
)


def skip_pattern(module_name: str) -> str:
    """A `llm_int8_skip_modules` entry that matches the module at any depth.

    transformers matches these from the start of a qualified name or as its
    suffix, so a plain `pooler` misses BERT's `bert.pooler.dense`; as a regex
    anchored on a module boundary it matches `bert.pooler.dense` and
    `classifier.out_proj` but not `pre_classifier` for `classifier`.
    """
    return r"(?:.*\.)?" + re.escape(module_name)


class QLoRA(Technique):
    # LoRA's rate: the same adapters (LoRA on MiniLM, 1 epoch of rotten tomatoes: 2e-3 gives .81)
    default_learning_rate = 2e-3

    def model_load_kwargs(self, ctx: TechniqueContext) -> dict[str, Any]:
        import torch
        from transformers import BitsAndBytesConfig

        p = ctx.params
        # a quantized head fails in the first forward, and the pooler is small: keep both as is;
        # a language model's output layer is usually tied to the input embeddings: quantizing it
        # would hand the embedding's weight to a 4-bit layer
        extra = "pooler" if ctx.task == "sequence-classification" else "lm_head"
        skip = [skip_pattern(name) for name in head_modules(ctx) + [extra]]
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=p["quant_type"],
            bnb_4bit_use_double_quant=p["double_quant"],
            bnb_4bit_compute_dtype=getattr(torch, p["compute_dtype"]),
            llm_int8_skip_modules=skip,
        )
        return {"quantization_config": config, "device_map": kbit_device_map()}

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import LoraConfig, prepare_model_for_kbit_training

        p = ctx.params
        if not getattr(model, "is_loaded_in_4bit", False):
            raise ValueError(
                "QLoRA expects a base model loaded in 4 bits: build it with the technique's "
                "model_load_kwargs"
            )
        release_checkpoint_map(model)
        # peft's default, reentrant checkpointing: with bitsandbytes' 4-bit layers on the CPU,
        # the non-reentrant kind peaked 40 % higher on a BERT-base-sized model (2.25 vs 1.61 GiB)
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=p["gradient_checkpointing"],
            gradient_checkpointing_kwargs={"use_reentrant": True},
        )
        config = LoraConfig(
            task_type=peft_task_type(ctx),
            r=p["r"],
            lora_alpha=p["alpha"],
            lora_dropout=p["dropout"],
            target_modules=resolve_target_modules(p["target_modules"], ctx.facts),
        )
        return build_peft_model(model, config, ctx)

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        from peft import PeftModel

        if not getattr(base_model, "is_loaded_in_4bit", False):
            raise ValueError(
                "a QLoRA adapter must be loaded on the 4-bit base it was trained on: build the "
                "base model with the technique's model_load_kwargs"
            )
        release_checkpoint_map(base_model)
        return PeftModel.from_pretrained(base_model, str(directory))
