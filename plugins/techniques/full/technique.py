"""Full fine-tuning: every weight trains. The baseline the other techniques are measured against."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sdk import Technique, TechniqueContext

AUTO_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}


class FullFineTuning(Technique):
    default_learning_rate: ClassVar[float] = 5e-5

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        for param in model.parameters():
            param.requires_grad = True
        return model

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        model.save_pretrained(str(directory))  # safetensors

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        """The saved folder is a whole model; the fresh base model is not needed."""
        import transformers

        auto = getattr(transformers, AUTO_CLASSES.get(ctx.task, "AutoModel"))
        return auto.from_pretrained(str(directory), use_safetensors=True)
