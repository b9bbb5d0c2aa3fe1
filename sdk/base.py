"""Base classes a bundle's entry subclasses: one per plugin kind.

Each has the few methods an author implements; everything else (discovery,
validation, params, runs) is done for them. Heavy libraries are imported inside
methods, so importing the SDK stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sdk.context import (
        DatasetContext,
        DatasetSplits,
        LoadedModel,
        ModelContext,
        RunContext,
        TechniqueContext,
    )
    from sdk.hf_facts import DerivedFacts


class Plugin:
    """Common ground of all kinds. `kind` tells the contract checks what to expect."""

    kind: ClassVar[str] = ""


class DatasetProvider(Plugin):
    """Turns params into labelled splits."""

    kind: ClassVar[str] = "dataset"

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        """Return the splits: `datasets.Dataset`s with the columns the task needs.

        sequence-classification: `text` (str) and `label` (int, 0..n-1)
        causal-lm: `prompt` and `completion`; seq2seq: `source` and `target`.
        """
        raise NotImplementedError


class ModelProvider(Plugin):
    """Builds a model and its tokenizer for a task."""

    kind: ClassVar[str] = "model"

    def load(self, ctx: ModelContext) -> LoadedModel:
        raise NotImplementedError

    def load_tokenizer(self, ctx: ModelContext) -> Any:
        """Tokenizer alone (used to prepare data before the model loads)."""
        return self.load(ctx).tokenizer

    def derived_facts(self, ctx: ModelContext) -> DerivedFacts | None:
        """Facts read from the model `ctx.params` name, for a bundle whose manifest says
        `derived: true`. Default None: the manifest's facts are the model's."""
        return None


class Technique(Plugin):
    """Makes a model parameter-efficient (or not, for the full baseline)."""

    kind: ClassVar[str] = "technique"
    #: learning rate the trainer uses when the recipe leaves it at 0 ("auto")
    default_learning_rate: ClassVar[float] = 1e-3

    def model_load_kwargs(self, ctx: TechniqueContext) -> dict[str, Any]:
        """Extra `from_pretrained` kwargs (e.g. a quantization config). Default: none."""
        return {}

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        """Return the model to train, with only the technique's parameters trainable."""
        raise NotImplementedError

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        """Write what is needed to restore the trained weights. Default: save_pretrained."""
        model.save_pretrained(str(directory))

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        """Restore a trained model from `directory` on top of a fresh base model."""
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, str(directory))

    def training_callbacks(self, model: Any, ctx: TechniqueContext) -> list[Any]:
        """`transformers.TrainerCallback`s the trainer adds for this run. Default: none.

        Called with the model `apply` returned. For techniques that act between
        optimizer steps (AdaLoRA reallocates its rank budget after each step).
        """
        return []

    def create_optimizer(self, model: Any, args: Any, ctx: TechniqueContext) -> Any | None:
        """An optimizer of the technique's own for this run, or None for the trainer's. Default: None.

        Called with the model `apply` returned and the run's
        `transformers.TrainingArguments` (learning rate, weight decay, `optim`).
        A trainer passes an optimizer it gets to `Trainer(optimizers=(optimizer,
        None))`, so the learning-rate schedule and warm-up still come from the
        arguments. For techniques that give parameter groups rates of their own
        (LoRA+ trains LoRA's B matrices faster than its A matrices).
        """
        return None


class TrainerPlugin(Plugin):
    """Turns a resolved recipe into a finished run."""

    kind: ClassVar[str] = "trainer"

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train and evaluate; return the final metrics (written to results.json)."""
        raise NotImplementedError


BASE_CLASSES: dict[str, type[Plugin]] = {
    "dataset": DatasetProvider,
    "model": ModelProvider,
    "technique": Technique,
    "trainer": TrainerPlugin,
}
