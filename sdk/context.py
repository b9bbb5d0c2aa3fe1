"""Typed objects the engine hands to plugins (and the values plugins hand back)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelFacts:
    """The `model:` section of the chosen model's manifest."""

    architecture: str
    tasks: list[str]
    layer_kinds: list[str] = field(default_factory=lambda: ["linear"])
    attention_modules: list[str] = field(default_factory=list)
    feedforward_modules: list[str] = field(default_factory=list)
    default_target_modules: list[str] = field(default_factory=list)
    classifier_modules: list[str] = field(default_factory=list)
    weights: dict[str, Any] = field(default_factory=dict)
    num_parameters: int | None = None
    #: the bundle derives the real facts from the chosen model (ModelProvider.derived_facts)
    derived: bool = False

    @classmethod
    def from_manifest_section(cls, section: dict[str, Any]) -> ModelFacts:
        return cls(**{k: v for k, v in section.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DatasetContext:
    params: dict[str, Any]
    bundle_dir: Path
    task: str
    label_names: list[str]
    text_fields: list[str]
    label_field: str
    seed: int = 42


@dataclass
class DatasetSplits:
    """Labelled splits as `datasets.Dataset` objects (see DatasetProvider.load)."""

    train: Any
    validation: Any
    test: Any | None = None
    label_names: list[str] = field(default_factory=list)
    task: str = "sequence-classification"
    #: tokens per example the trainer keeps (longer inputs are cut); None = the trainer's default
    max_length: int | None = None
    #: what loading changed, in words (e.g. "dropped 3 empty rows from train.csv")
    notes: list[str] = field(default_factory=list)
    #: generation tasks: how a prompt/source becomes the model input; `{input}` marks the text
    #: (e.g. "summarize: {input}"); None uses the text as it is
    input_template: str | None = None
    #: seq2seq: tokens kept of each target (longer ones are cut); None = the trainer's default
    max_target_length: int | None = None


@dataclass(frozen=True)
class _BuildContext:
    """What a plugin building the model is told: its params and folder, the model, the task."""

    params: dict[str, Any]
    bundle_dir: Path
    facts: ModelFacts
    task: str
    num_labels: int = 2


@dataclass(frozen=True)
class ModelContext(_BuildContext):
    label_names: list[str] = field(default_factory=list)
    load_kwargs: dict[str, Any] = field(default_factory=dict)  # from the technique


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    #: ids of the tokens the model plugin added to the vocabulary (its `add_tokens` param)
    new_token_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TechniqueContext(_BuildContext):
    #: optimizer steps the run will take; the trainer fills it (AdaLoRA schedules its rank budget on it)
    total_steps: int | None = None
    #: where the model's weights and tokenizer come from (a folder or hub id); the trainer fills it
    #: (prompt tuning initialised from text tokenizes with it)
    model_name_or_path: str | None = None
    #: tokens the model plugin added to the vocabulary; techniques that can train embedding rows
    #: (LoRA) train and save these rows, so the new tokens learn a meaning
    new_token_ids: list[int] = field(default_factory=list)
    #: a few hundred training examples as model-input batches (dicts of tensors, collated as the
    #: trainer feeds them), for techniques that initialise from the data (LoRA's EVA, CorDA);
    #: call it inside `apply`. None when the run's trainer offers none
    calibration: Callable[[], Iterable[dict[str, Any]]] | None = None


class Reporter(Protocol):
    """How a trainer reports back; the engine writes it to the run folder."""

    def log_metrics(self, record: dict[str, Any]) -> None: ...

    def set_progress(self, **fields: Any) -> None: ...


@dataclass
class PluginHandle:
    """A plugin object with its params and the folder it came from."""

    id: str
    instance: Any
    params: dict[str, Any]
    bundle_dir: Path
    manifest: dict[str, Any]


@dataclass
class RunContext:
    """Everything a trainer needs for one run."""

    run_dir: Path
    dataset: PluginHandle
    model: PluginHandle
    technique: PluginHandle
    trainer: PluginHandle
    reporter: Reporter
    resume_from: Path | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def adapter_dir(self) -> Path:
        return self.run_dir / "adapter"

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def model_facts(self) -> ModelFacts:
        return ModelFacts.from_manifest_section(self.model.manifest["model"])

    @property
    def dataset_section(self) -> dict[str, Any]:
        return self.dataset.manifest["dataset"]
