"""Sequence classification's steps in the training pipeline (encoders and decoders alike).

Examples are tokenized once (padding waits for the batch); evaluation scores
accuracy and macro-F1 from the predicted class alone. Decoder-only models
classify from their last non-padding token, which transformers finds by
comparing the input ids with `config.pad_token_id`: the config is made to name
the tokenizer's pad token (decoder tokenizers often have none and pad with
EOS; `sdk.hf.align_pad_token`), so pooling picks the right token whichever
side the tokenizer pads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk import DatasetContext, LoadedModel
from sdk.hf import align_pad_token
from sdk.records import RunResults
from sdk.tokenize import tokenize_cached

from . import measures
from .steps import Run


class ClassificationSteps:
    """The `TaskSteps` of sequence classification."""

    default_max_length = 128
    eval_marker = "eval_accuracy"

    def dataset_context(self, run: Run) -> DatasetContext:
        section = run.ctx.dataset_section
        return DatasetContext(
            params=dict(run.ctx.dataset.params),
            bundle_dir=Path(run.ctx.dataset.bundle_dir),
            task=run.task,
            label_names=list(section.get("label_names") or []),
            text_fields=list(section.get("text_fields") or ["text"]),
            label_field=section.get("label_field", "label"),
            seed=run.seed,
        )

    def label_names(self, run: Run) -> list[str]:
        assert run.splits is not None
        names = list(run.splits.label_names) or list(
            run.ctx.dataset_section.get("label_names") or []
        )
        return names or [str(i) for i in sorted(set(run.splits.train["label"]))]

    def prepare_model(self, run: Run, loaded: LoadedModel) -> None:
        # also for model bundles that load without sdk.hf
        align_pad_token(loaded.model, loaded.tokenizer)

    def encode(self, run: Run) -> tuple[Any, Any]:
        assert run.splits is not None
        train_set = tokenize_cached(run.splits.train, run.tokenizer, run.max_length)
        # the order of evaluation does not change its scores: longest first, so that each
        # batch pads little (the evaluation sampler keeps the order; training batches are
        # grouped by length by the Trainer's sampler)
        eval_set = tokenize_cached(run.splits.validation, run.tokenizer, run.max_length)
        return train_set, eval_set.sort("length", reverse=True).flatten_indices()

    def collator(self, run: Run) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(run.tokenizer)

    def trainer_options(self, run: Run) -> dict[str, Any]:
        return {
            "compute_metrics": measures.classification_metrics,
            "preprocess_logits_for_metrics": measures.logits_to_classes,
        }

    def baseline_extra(self, run: Run) -> dict[str, Any]:
        return {}

    def final_extra(self, run: Run, trained: Any) -> dict[str, Any]:
        return {}

    def adapter_info(self, run: Run) -> dict[str, Any]:
        return {"label_names": run.label_names, "max_length": run.max_length}

    def results(
        self, run: Run, common: dict[str, Any], final: dict[str, Any], baseline: dict[str, Any]
    ) -> RunResults:
        return RunResults(
            accuracy=final.get("eval_accuracy"),
            f1_macro=final.get("eval_f1_macro"),
            baseline_accuracy=baseline.get("baseline_accuracy"),
            baseline_f1_macro=baseline.get("baseline_f1_macro"),
            label_names=run.label_names,
            **common,
        )
