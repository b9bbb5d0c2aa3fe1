"""Text pairs for the generation tasks (causal-lm: prompt/completion; seq2seq: source/target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.context import DatasetSplits
from sdk.data.cache import cache_root
from sdk.data.columns import as_text, is_empty_text, require_columns
from sdk.data.errors import DataColumnError, DataError, DataFileError
from sdk.data.files import MAX_FILE_MB, ROWS_PER_BATCH, read_table
from sdk.data.memory import release_mapped_pages
from sdk.data.splits import hold_out, subsample

#: the two columns `DatasetSplits` holds for each generation task
PAIR_COLUMNS = {"causal-lm": ("prompt", "completion"), "seq2seq": ("source", "target")}


@dataclass
class TextPairs:
    """One file's `input` and `output` columns (stripped, no empty rows), with what was dropped."""

    dataset: Any
    path: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.dataset)


def to_text_pairs(
    dataset: Any, input_column: str, output_column: str, *, path: str | Path
) -> TextPairs:
    """Pick the input and output columns; drop rows where either is empty."""
    require_columns(dataset, [(input_column, "input"), (output_column, "output")], path)
    source = dataset.select_columns([input_column, output_column])
    pairs = source.with_format("arrow").map(
        pair_batch,
        batched=True,
        batch_size=ROWS_PER_BATCH,
        writer_batch_size=ROWS_PER_BATCH,
        remove_columns=source.column_names,
        fn_kwargs={"input_column": input_column, "output_column": output_column},
        desc="reading text pairs",
    )
    pairs = pairs.with_format(None)
    if len(pairs) == 0:
        raise DataColumnError(
            f"no usable rows: every row has an empty '{input_column}' or '{output_column}'",
            path=path,
            column=input_column,
        )
    notes = []
    dropped = len(dataset) - len(pairs)
    if dropped:
        notes.append(
            f"dropped {dropped} row(s) with an empty '{input_column}' or '{output_column}' "
            f"from {Path(path).name}"
        )
    return TextPairs(pairs, str(path), notes)


def pair_batch(table: Any, input_column: str, output_column: str) -> Any:
    """Rows of one Arrow batch whose input and output are both non-empty, stripped."""
    release_mapped_pages(cache_root())  # what the previous batch touched
    import pyarrow as pa
    import pyarrow.compute as pc

    source = as_text(table.column(input_column).combine_chunks(), "", input_column)
    target = as_text(table.column(output_column).combine_chunks(), "", output_column)
    keep = pc.invert(pc.or_(is_empty_text(source), is_empty_text(target)))
    return pa.table({"input": source.filter(keep), "output": target.filter(keep)})


def _named(dataset: Any, task: str) -> Any:
    first, second = PAIR_COLUMNS[task]
    return dataset.rename_columns({"input": first, "output": second})


def finish_text_pairs(
    train: TextPairs,
    validation: TextPairs | None,
    task: str,
    params: dict[str, Any],
    *,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """Split off validation when there is no validation part, apply the common params, package.

    Common params: train_samples, eval_samples, max_length (input tokens),
    max_target_length (seq2seq output tokens) and template (the input template,
    `{input}` marking the text).
    """
    if task not in PAIR_COLUMNS:
        raise DataError(f"task '{task}' has no text pairs (use one of {', '.join(PAIR_COLUMNS)})")
    notes = list(train.notes) + (list(validation.notes) if validation else [])
    if validation is not None:
        train_set, validation_set = train.dataset, validation.dataset
    else:
        train_set, validation_set = hold_out(
            train.dataset, validation_fraction, seed, path=train.path
        )
        notes.append(
            f"held out {len(validation_set)} of {len(train)} rows of {Path(train.path).name} "
            f"for validation (seed {seed})"
        )
    train_set = subsample(_named(train_set, task), int(params.get("train_samples") or 0), seed)
    validation_set = subsample(
        _named(validation_set, task), int(params.get("eval_samples") or 0), seed
    )
    template = params.get("template") or None
    if template and "{input}" not in template:
        raise DataError(f"template {template!r} has no {{input}} placeholder for the text")
    max_length = params.get("max_length")
    max_target = params.get("max_target_length")
    return DatasetSplits(
        train=train_set,
        validation=validation_set,
        task=task,
        max_length=int(max_length) if max_length else None,
        notes=notes,
        input_template=template,
        max_target_length=int(max_target) if max_target else None,
    )


def load_text_pair_files(
    train_path: str | Path,
    validation_path: str | Path | None,
    task: str,
    params: dict[str, Any],
    *,
    input_column: str,
    output_column: str,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """Files (CSV, JSONL, JSON, Parquet) -> generation splits with the task's two columns."""
    max_mb = params.get("max_file_mb", MAX_FILE_MB)
    parts = [
        to_text_pairs(
            read_table(p, max_mb=max_mb), input_column, output_column, path=Path(p).expanduser()
        )
        for p in [train_path] + ([validation_path] if validation_path else [])
    ]
    return finish_text_pairs(
        parts[0],
        parts[1] if len(parts) > 1 else None,
        task,
        params,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def load_text_pairs_from_hub(
    dataset_id: str,
    task: str,
    params: dict[str, Any],
    *,
    input_column: str,
    output_column: str,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """A hub dataset's train (and validation, if it has one) split -> generation splits."""
    import datasets

    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:  # offline, unknown id, gated: the message says which
        raise DataFileError(
            f"cannot load hub dataset '{dataset_id}' (offline or unknown id?): {exc}",
            path=dataset_id,
        ) from None
    if "train" not in loaded:
        raise DataFileError(f"has no train split (splits: {', '.join(loaded)})", path=dataset_id)
    validation = next((s for s in ("validation", "valid", "dev", "test") if s in loaded), None)
    pairs = lambda split: to_text_pairs(  # noqa: E731
        loaded[split], input_column, output_column, path=f"{dataset_id}:{split}"
    )
    return finish_text_pairs(
        pairs("train"),
        pairs(validation) if validation else None,
        task,
        params,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def load_text_pairs(
    params: dict[str, Any],
    task: str,
    *,
    input_column: str,
    output_column: str,
    shipped: tuple[str | Path, str | Path] | None = None,
    seed: int = 42,
) -> DatasetSplits:
    """A generation dataset bundle's whole `load`: from the `hub_id` param, else the `path`
    (and `validation_path`) params, else the `shipped` (train, validation) files."""
    options: dict[str, Any] = {
        "input_column": input_column,
        "output_column": output_column,
        "validation_fraction": float(params.get("validation_fraction") or 0.1),
        "seed": seed,
    }
    hub_id = (params.get("hub_id") or "").strip()
    if hub_id:
        return load_text_pairs_from_hub(hub_id, task, params, **options)
    path = (params.get("path") or "").strip()
    if path:
        validation = (params.get("validation_path") or "").strip() or None
        return load_text_pair_files(path, validation, task, params, **options)
    if shipped is None:
        raise DataFileError("no file chosen: set dataset.path to a .jsonl, .csv or .parquet file")
    return load_text_pair_files(shipped[0], shipped[1], task, params, **options)
