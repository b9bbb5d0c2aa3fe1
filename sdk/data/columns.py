"""Picking the text and label (or input and output) columns, and finding empty cells.

Everything here is an Arrow compute operation over record batches of the
memory-mapped table, so a column is never turned into a Python list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.data.cache import cache_root
from sdk.data.errors import DataColumnError
from sdk.data.files import ROWS_PER_BATCH, delimiter_hint
from sdk.data.memory import release_mapped_pages


@dataclass
class LabelledRows:
    """One file's text and label columns: the rows kept, the distinct labels, what was dropped."""

    dataset: Any  # datasets.Dataset with the file's columns; cleaned by `sdk.data.labels`
    path: str
    text_column: str = "text"
    label_column: str = "label"
    kept: int = 0
    #: distinct labels of the kept rows, stripped, as Python values (numbers or text)
    distinct: list[Any] = field(default_factory=list)
    dropped_empty: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.kept


def require_columns(dataset: Any, wanted: list[tuple[str, str]], path: str | Path) -> None:
    """Each (column, role) exists, or a DataColumnError listing the columns there are."""
    columns = [str(c) for c in dataset.column_names]
    for column, role in wanted:
        if column not in columns:
            hint = delimiter_hint(Path(path), columns)
            raise DataColumnError(
                f"no {role} column '{column}'; the columns are: {', '.join(columns)}{hint}",
                path=path,
                column=column,
            )


def batches(dataset: Any, columns: list[str]) -> Iterator[Any]:
    """Record batches of `columns`, straight from the Arrow table (no Python rows)."""
    table = dataset.with_format("arrow").select_columns(columns)
    for start in range(0, table.num_rows, ROWS_PER_BATCH):
        yield table[start : start + ROWS_PER_BATCH]
        release_mapped_pages(cache_root())  # the pages this batch touched


def as_text(array: Any, path: str | Path, column: str) -> Any:
    """The column as stripped UTF-8 text (numbers are written out); nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        try:
            array = pc.cast(array, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataColumnError(
                f"holds {array.type} values, not text", path=path, column=column
            ) from None
    return pc.utf8_trim_whitespace(array)


def is_empty_text(text: Any) -> Any:
    """Null or empty, for an already stripped text array."""
    import pyarrow.compute as pc

    return pc.or_kleene(pc.is_null(text), pc.equal(pc.fill_null(text, ""), ""))


def strip_if_text(array: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return pc.utf8_trim_whitespace(array)
    return array


def is_missing(array: Any) -> Any:
    """Null, NaN, or blank text: a cell with no value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = pc.is_null(array, nan_is_null=True)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        blank = pc.equal(pc.fill_null(pc.utf8_trim_whitespace(array), ""), "")
        missing = pc.or_(missing, blank)
    return missing


def to_classification(
    dataset: Any, text_column: str, label_column: str, *, path: str | Path
) -> LabelledRows:
    """Check the text and label columns; count rows whose text or label is empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    require_columns(dataset, [(text_column, "text"), (label_column, "label")], path)
    dropped_text = dropped_label = kept = 0
    distinct: list[Any] = []
    for batch in batches(dataset, [text_column, label_column]):
        label = batch.column(label_column).combine_chunks()
        no_label = is_missing(label)
        no_text = pc.and_(
            pc.invert(no_label),
            is_empty_text(as_text(batch.column(text_column), path, text_column)),
        )
        dropped_label += pc.sum(no_label).as_py() or 0
        dropped_text += pc.sum(no_text).as_py() or 0
        keep = pc.invert(pc.or_(no_label, no_text))
        kept_labels = strip_if_text(label.filter(keep))
        kept += len(kept_labels)
        try:
            distinct.extend(pc.unique(kept_labels).to_pylist())
        except pa.ArrowNotImplementedError:  # lists or structs from JSON
            raise DataColumnError(
                f"holds {label.type} values; a label is a class id or a name",
                path=path,
                column=label_column,
            ) from None
    if not kept:
        raise DataColumnError(
            f"no usable rows: every row has an empty '{text_column}' or '{label_column}'",
            path=path,
            column=text_column,
        )
    name = Path(path).name
    notes = []
    if dropped_text:
        notes.append(f"dropped {dropped_text} row(s) with empty '{text_column}' from {name}")
    if dropped_label:
        notes.append(f"dropped {dropped_label} row(s) with empty '{label_column}' from {name}")
    return LabelledRows(
        dataset,
        str(path),
        text_column,
        label_column,
        kept,
        list(dict.fromkeys(distinct)),
        dropped_text + dropped_label,
        notes,
    )
