"""LoRA through peft: low-rank updates on the chosen projections; DoRA and rsLoRA as options.

When the model plugin added tokens to the vocabulary (`add_tokens`), their
embedding rows train too (peft's `trainable_token_indices`) and are saved in
the adapter, so the new tokens learn a meaning and the adapter reloads onto a
base built the same way with the same outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sdk import Technique, TechniqueContext, resolve_target_modules

# peft's task types by peftlab task
PEFT_TASK_TYPES = {
    "sequence-classification": "SEQ_CLS",
    "causal-lm": "CAUSAL_LM",
    "seq2seq": "SEQ_2_SEQ_LM",
}


def peft_task_type(task: str) -> Any:
    from peft import TaskType

    try:
        return TaskType[PEFT_TASK_TYPES[task]]
    except KeyError:
        raise ValueError(f"LoRA has no peft task type for task '{task}'") from None


class LoRA(Technique):
    # LoRA on small encoders needs a much higher rate than full fine-tuning
    default_learning_rate: ClassVar[float] = 2e-3

    def config(self, ctx: TechniqueContext) -> Any:
        from peft import LoraConfig

        p = ctx.params
        # the new classification head (and DistilBERT's pre_classifier) must train and be saved
        heads = list(ctx.facts.classifier_modules) if ctx.task == "sequence-classification" else []
        return LoraConfig(
            task_type=peft_task_type(ctx.task),
            r=int(p.get("r", 8)),
            lora_alpha=int(p.get("alpha", 16)),
            lora_dropout=float(p.get("dropout", 0.0)),
            target_modules=resolve_target_modules(p.get("target_modules"), ctx.facts),
            bias=p.get("bias", "none"),
            use_dora=bool(p.get("use_dora", False)),
            use_rslora=bool(p.get("use_rslora", False)),
            modules_to_save=heads or None,
            # rows of the tokens the model plugin added: trained, and saved with the adapter
            trainable_token_indices=list(ctx.new_token_ids) or None,
        )

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import get_peft_model

        return get_peft_model(model, self.config(ctx))

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        if not ctx.new_token_ids:
            model.save_pretrained(str(directory))
            return
        # The added tokens' rows are in the adapter (trainable tokens); the rest of the grown
        # embedding matrix is the base's, rebuilt the same way by the model plugin, so it is
        # not copied (peft's "auto" would copy it whole after comparing with the base config).
        model.save_pretrained(str(directory), save_embedding_layers=False)
