"""The typed record of a finished run's results: the fields of its results.json.

A trainer fills one of these instead of a free-form dict; whatever reads a run
folder (the report, comparisons, benchmarks) can parse results.json back into
the same type with `parse_results`. Unknown keys are kept (`extra="allow"`)
and every field has a default, so run folders written by older versions, or by
third-party trainers that report fewer figures, still parse.

`to_json_dict` gives the keys results.json has always had: the fields of the
record's class (a classification run does not list the generation figures),
plus `gpu` only when the run saw one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sdk.textgen import GENERATION_TASKS  # tasks whose results are a `GenerationResults`


class RunResults(BaseModel):
    """What every run reports: scores, sizes, speed, memory, and what was trained."""

    model_config = ConfigDict(extra="allow")

    accuracy: float | None = Field(
        None, description="Share of validation examples classified right."
    )
    f1_macro: float | None = Field(None, description="Unweighted mean of the per-class F1 scores.")
    eval_loss: float | None = Field(None, description="Mean loss on the validation split.")
    train_loss: float | None = Field(None, description="Mean training loss over the run.")
    baseline_accuracy: float | None = Field(None, description="Accuracy before training.")
    baseline_f1_macro: float | None = Field(None, description="Macro-F1 before training.")
    trainable_params: int | None = Field(None, description="Parameters the technique trains.")
    total_params: int | None = Field(None, description="All parameters of the trained model.")
    trainable_percent: float | None = Field(None, description="100 x trainable / total.")
    train_runtime_s: float | None = Field(None, description="Seconds spent in training.")
    train_samples_per_s: float | None = None
    train_steps_per_s: float | None = None
    train_tokens_per_s: float | None = Field(None, description="Non-padding tokens per second.")
    peak_memory_mb: float | None = Field(None, description="Peak memory in MiB (see the kind).")
    peak_memory_kind: str | None = Field(None, description="'cuda' (allocator) or 'rss'.")
    peak_memory_scope: str | None = Field(None, description="'process' or 'largest process'.")
    model_footprint_mb: float | None = Field(None, description="Parameters and buffers in MiB.")
    adapter_size_mb: float | None = Field(None, description="The saved technique weights in MiB.")
    inference_samples_per_s: float | None = Field(None, description="Evaluation throughput.")
    global_step: int | None = Field(None, description="Optimizer steps taken.")
    epochs: float | None = Field(None, description="Passes over the training split.")
    num_train_samples: int | None = None
    num_eval_samples: int | None = Field(None, description="Validation examples scored.")
    learning_rate: float | None = Field(None, description="The peak learning rate used.")
    label_names: list[str] = Field(default_factory=list, description="Class names, by id.")
    technique: str | None = Field(None, description="Technique plugin id.")
    model: str | None = Field(None, description="Model plugin id.")
    dataset: str | None = Field(None, description="Dataset plugin id.")
    max_length: int | None = Field(None, description="Tokens kept per example.")
    world_size: int | None = Field(None, description="Processes that trained together.")
    ddp_find_unused_parameters: bool | None = None
    device: str | None = Field(None, description="The torch device of the training process.")
    precision: str | None = Field(
        None, description="What the training ran in: no (full precision), bf16 or fp16."
    )
    resumed_from: str | None = Field(None, description="The checkpoint a resumed run started at.")
    data_notes: list[str] = Field(default_factory=list, description="What loading changed.")
    total_runtime_s: float | None = Field(None, description="Seconds from start to results.")
    gpu: str | None = Field(None, description="The GPU's name, when the run had one.")

    @field_validator("label_names", "data_notes", mode="before")
    @classmethod
    def _as_texts(cls, value: Any) -> Any:
        # a dataset may name its classes 0 and 1: recorded as text rather than failing the
        # run after training
        return [str(item) for item in value] if isinstance(value, list | tuple) else value

    def to_json_dict(self) -> dict[str, Any]:
        """The record as results.json holds it (values unchanged: an infinite perplexity
        stays infinite; `gpu` only when there was one)."""
        return self.model_dump(exclude={"gpu"} if self.gpu is None else None)


class GenerationResults(RunResults):
    """A causal-lm or seq2seq run: ROUGE of greedy generations and perplexity besides the rest."""

    rouge1: float | None = Field(None, description="ROUGE-1 F-measure after training (0..1).")
    rouge2: float | None = Field(None, description="ROUGE-2 F-measure after training (0..1).")
    rougeL: float | None = Field(None, description="ROUGE-L F-measure after training (0..1).")
    perplexity: float | None = Field(None, description="exp(eval_loss).")
    baseline_rouge1: float | None = None
    baseline_rouge2: float | None = None
    baseline_rougeL: float | None = None
    baseline_perplexity: float | None = None
    generation_samples_per_s: float | None = Field(None, description="Greedy generation speed.")
    num_rouge_samples: int | None = Field(None, description="Validation rows ROUGE scored.")
    max_new_tokens: int | None = Field(None, description="Most tokens generated per example.")
    task: str | None = Field(None, description="causal-lm or seq2seq.")
    max_target_length: int | None = Field(None, description="seq2seq: target tokens kept.")
    new_tokens: int | None = Field(None, description="Tokens the model plugin added.")


def parse_results(data: dict[str, Any]) -> RunResults:
    """results.json's content as the record of its kind (a generation run's or the common one)."""
    if data.get("task") in GENERATION_TASKS:
        return GenerationResults.model_validate(data)
    return RunResults.model_validate(data)
