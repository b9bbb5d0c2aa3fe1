"""Source -> target pairs for seq2seq models: the shipped sample, a local file, or a hub dataset."""

from __future__ import annotations

from sdk import DatasetContext, DatasetProvider, DatasetSplits
from sdk.data import load_text_pairs


class Summaries(DatasetProvider):
    """`source` (a text) and `target` (its summary) columns."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        data = ctx.bundle_dir / "data"
        return load_text_pairs(
            ctx.params,
            "seq2seq",
            input_column=ctx.params.get("source_field") or "source",
            output_column=ctx.params.get("target_field") or "target",
            shipped=(data / "train.jsonl", data / "validation.jsonl"),
            seed=ctx.seed,
        )
