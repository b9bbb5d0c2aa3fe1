"""Your own file: CSV, TSV, JSONL, JSON or Parquet with a text column and a label column."""

from __future__ import annotations

from sdk import DatasetContext, DatasetProvider, DatasetSplits
from sdk.data import DataFileError, load_labelled_files


class TabularFile(DatasetProvider):
    """Labels may be integers or names (names are sorted into the label list)."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        path = (ctx.params.get("path") or "").strip()
        if not path:
            raise DataFileError(
                "no file chosen: set dataset.path to a .csv, .jsonl, .json or .parquet file"
            )
        validation = (ctx.params.get("validation_path") or "").strip() or None
        return load_labelled_files(
            path,
            validation,
            ctx.params,
            text_column=ctx.params.get("text_column") or "text",
            label_column=ctx.params.get("label_column") or "label",
            validation_fraction=float(ctx.params.get("validation_fraction") or 0.1),
            seed=ctx.seed,
        )
