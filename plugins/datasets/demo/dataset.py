"""The shipped demo sentiment set: two small CSV files inside this bundle, so training works offline."""

from __future__ import annotations

from sdk import DatasetContext, DatasetProvider, DatasetSplits
from sdk.data import load_labelled_files


class DemoSentiment(DatasetProvider):
    """Short movie and product reviews labelled negative (0) or positive (1)."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        data = ctx.bundle_dir / "data"
        return load_labelled_files(
            data / "train.csv",
            data / "validation.csv",
            ctx.params,
            label_names=ctx.label_names,
            seed=ctx.seed,
        )
