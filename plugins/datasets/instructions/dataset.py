"""Prompt -> completion pairs for causal LMs: the shipped sample, a local file, or a hub dataset."""

from __future__ import annotations

from sdk import DatasetContext, DatasetProvider, DatasetSplits
from sdk.data import load_text_pairs


class Instructions(DatasetProvider):
    """`prompt` and `completion` columns; the trainer learns only the completion."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        data = ctx.bundle_dir / "data"
        return load_text_pairs(
            ctx.params,
            "causal-lm",
            input_column=ctx.params.get("prompt_field") or "prompt",
            output_column=ctx.params.get("completion_field") or "completion",
            shipped=(data / "train.jsonl", data / "validation.jsonl"),
            seed=ctx.seed,
        )
