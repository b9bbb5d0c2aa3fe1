"""Files to labelled classification splits: the whole path the file-based dataset bundles use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdk.context import DatasetSplits
from sdk.data.cache import cache_root
from sdk.data.columns import to_classification
from sdk.data.files import MAX_FILE_MB, read_table
from sdk.data.labels import encode_labels
from sdk.data.memory import release_free_heap, release_mapped_pages
from sdk.data.splits import finish_splits, hold_out


def load_labelled_files(
    train_path: str | Path,
    validation_path: str | Path | None,
    params: dict[str, Any],
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    test_path: str | Path | None = None,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """Train (and validation, test) files -> DatasetSplits of `text` and a `ClassLabel` `label`."""
    parts = [train_path] + ([validation_path] if validation_path else [])
    parts += [test_path] if test_path else []
    max_mb = params.get("max_file_mb", MAX_FILE_MB)  # 0 = no limit
    rows = [
        to_classification(
            read_table(p, max_mb=max_mb), text_column, label_column, path=Path(p).expanduser()
        )
        for p in parts
    ]
    release_mapped_pages(cache_root())  # the scans touched every page of the raw files
    encoded, names = encode_labels(rows, label_names)
    release_mapped_pages(cache_root())
    release_free_heap()  # what reading and encoding the files allocated and freed
    notes = [note for part in rows for note in part.notes]
    if validation_path:
        train, validation = encoded[0], encoded[1]
    else:
        train, validation = hold_out(
            encoded[0], validation_fraction, seed, path=rows[0].path, stratify="label"
        )
        notes.append(
            f"held out {len(validation)} of {len(encoded[0])} rows of {Path(train_path).name} "
            f"for validation (seed {seed})"
        )
    test = encoded[-1] if test_path else None
    return finish_splits(train, validation, names, params, seed=seed, test=test, notes=notes)
