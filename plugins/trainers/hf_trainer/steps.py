"""What differs between tasks in the one training pipeline: the `TaskSteps` a task supplies.

The pipeline (pipeline.py) loads, trains, evaluates and saves the same way for
every task; at each point where a task has its own answer (how its data loads and
is tokenized, how batches are padded, what evaluation scores, what results and
peftlab.json hold) it asks the run's `TaskSteps`. `Run` is what the pipeline has
built so far, handed to every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sdk import DatasetContext, DatasetSplits, LoadedModel, RunContext, TechniqueContext
from sdk.records import RunResults


@dataclass
class Run:
    """One run's state as the pipeline fills it in (data, then model, then the Trainer)."""

    ctx: RunContext
    progress: Any
    started: float
    seed: int
    splits: DatasetSplits | None = None
    label_names: list[str] = field(default_factory=list)
    loaded: LoadedModel | None = None
    tctx: TechniqueContext | None = None
    max_length: int = 0
    learning_rate: float = 0.0
    args: Any = None
    model: Any = None
    trainable: int = 0
    total: int = 0
    train_set: Any = None
    eval_set: Any = None
    collator: Any = None
    trainer: Any = None

    @property
    def params(self) -> dict[str, Any]:
        """The trainer plugin's params (the recipe's `trainer:` section)."""
        return self.ctx.trainer.params

    @property
    def task(self) -> str:
        return str(self.ctx.dataset_section.get("task", "sequence-classification"))

    @property
    def tokenizer(self) -> Any:
        assert self.loaded is not None, "the model is loaded before anything tokenizes"
        return self.loaded.tokenizer


class TaskSteps(Protocol):
    """The task-specific steps of a run, in the order the pipeline calls them."""

    #: tokens kept per example when the dataset does not say
    default_max_length: int
    #: a key only the Trainer's evaluation logs: finds the evaluation it ran at the last step
    eval_marker: str

    def dataset_context(self, run: Run) -> DatasetContext:
        """What the dataset plugin is asked to load."""
        ...

    def label_names(self, run: Run) -> list[str]:
        """The classes the model's head predicts (none for generation); checks the splits."""
        ...

    def prepare_model(self, run: Run, loaded: LoadedModel) -> None:
        """Adjust the loaded base model before the technique is applied."""
        ...

    def encode(self, run: Run) -> tuple[Any, Any]:
        """The tokenized training and evaluation splits."""
        ...

    def collator(self, run: Run) -> Any:
        """Pads a list of tokenized examples into a batch."""
        ...

    def trainer_options(self, run: Run) -> dict[str, Any]:
        """Extra `Trainer` keywords (metrics); may also adjust `run.args`."""
        ...

    def baseline_extra(self, run: Run) -> dict[str, Any]:
        """Scores before training beyond the Trainer's evaluation (keys `baseline_*`)."""
        ...

    def final_extra(self, run: Run, trained: Any) -> dict[str, Any]:
        """Scores after training beyond the Trainer's evaluation (keys `eval_*`), from the
        whole trained model (None off rank 0 under FSDP)."""
        ...

    def adapter_info(self, run: Run) -> dict[str, Any]:
        """The task's keys in peftlab.json (how predict feeds the model)."""
        ...

    def results(
        self, run: Run, common: dict[str, Any], final: dict[str, Any], baseline: dict[str, Any]
    ) -> RunResults:
        """The run's results record: the `common` figures plus the task's scores."""
        ...
