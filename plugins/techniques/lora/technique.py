"""LoRA through peft: low-rank updates on the chosen projections; DoRA and rsLoRA as options."""

from __future__ import annotations

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
            lora_dropout=float(p.get("dropout", 0.1)),
            target_modules=resolve_target_modules(p.get("target_modules"), ctx.facts),
            bias=p.get("bias", "none"),
            use_dora=bool(p.get("use_dora", False)),
            use_rslora=bool(p.get("use_rslora", False)),
            modules_to_save=heads or None,
        )

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import get_peft_model

        return get_peft_model(model, self.config(ctx))
