"""Rotten Tomatoes sentence polarity: a local folder of CSV files, or the hub dataset."""

from __future__ import annotations

from pathlib import Path

from sdk import DatasetContext, DatasetProvider, DatasetSplits
from sdk.data import DataError, DataFileError, finish_splits, load_labelled_files


class RottenTomatoes(DatasetProvider):
    """`path` (a folder with train.csv and validation.csv, optionally test.csv) wins over `hub_id`."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        folder = (ctx.params.get("path") or "").strip()
        if folder:
            return self._from_folder(Path(folder).expanduser(), ctx)
        return self._from_hub(ctx.params.get("hub_id") or "rotten_tomatoes", ctx)

    def _from_folder(self, folder: Path, ctx: DatasetContext) -> DatasetSplits:
        if not folder.is_dir():
            raise DataFileError(
                "folder not found (expected train.csv and validation.csv in it)", path=folder
            )
        test = folder / "test.csv"
        return load_labelled_files(
            folder / "train.csv",
            folder / "validation.csv",
            ctx.params,
            label_names=ctx.label_names,
            test_path=test if test.is_file() else None,
            seed=ctx.seed,
        )

    def _from_hub(self, hub_id: str, ctx: DatasetContext) -> DatasetSplits:
        import datasets

        try:
            data = datasets.load_dataset(hub_id)
        except Exception as exc:  # offline, unknown id, or a broken cache
            raise DataError(
                f"could not load hub dataset '{hub_id}' ({type(exc).__name__}: {exc}); "
                "the hub may be unreachable - set dataset.path to a folder with "
                "train.csv and validation.csv instead"
            ) from None
        for split in ("train", "validation"):
            if split not in data:
                raise DataError(
                    f"hub dataset '{hub_id}' has no '{split}' split (it has: {', '.join(data)})"
                )
            missing = {"text", "label"} - set(data[split].column_names)
            if missing:
                raise DataError(
                    f"hub dataset '{hub_id}' split '{split}' lacks column(s) {', '.join(sorted(missing))}; "
                    f"it has: {', '.join(data[split].column_names)}"
                )
        keep = lambda ds: ds.select_columns(["text", "label"])  # noqa: E731
        return finish_splits(
            keep(data["train"]),
            keep(data["validation"]),
            list(ctx.label_names) or ["negative", "positive"],
            ctx.params,
            seed=ctx.seed,
            test=keep(data["test"]) if "test" in data else None,
        )
