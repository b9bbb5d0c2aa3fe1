"""Reading labelled text files into splits: one place for the checks every dataset needs.

Dataset bundles call `load_labelled_files` (classification) or `load_text_pairs`
(generation), or `finish_splits` for splits they built themselves. Files are read
through `datasets` into memory-mapped Arrow tables (`sdk.data.files`); column checks
(`columns`), label rules and encoding (`labels`), held-out validation and subsampling
(`splits`) are Arrow or `datasets` operations, never Python loops over rows. Every
problem is a `DataError` (a ValueError) naming the file and column.
"""

from __future__ import annotations

from sdk.data.cache import cache_dir, cache_root, cache_usage, clear_cache
from sdk.data.classification import load_labelled_files
from sdk.data.columns import LabelledRows, to_classification
from sdk.data.errors import DataColumnError, DataError, DataFileError, DataLabelError
from sdk.data.files import MAX_FILE_MB, TABLE_SUFFIXES, read_table
from sdk.data.labels import check_label_kinds, encode_labels
from sdk.data.pairs import (
    PAIR_COLUMNS,
    TextPairs,
    finish_text_pairs,
    load_text_pair_files,
    load_text_pairs,
    load_text_pairs_from_hub,
    to_text_pairs,
)
from sdk.data.splits import finish_splits, hold_out, subsample

__all__ = [
    "MAX_FILE_MB",
    "PAIR_COLUMNS",
    "TABLE_SUFFIXES",
    "DataColumnError",
    "DataError",
    "DataFileError",
    "DataLabelError",
    "LabelledRows",
    "TextPairs",
    "cache_dir",
    "cache_root",
    "cache_usage",
    "check_label_kinds",
    "clear_cache",
    "encode_labels",
    "finish_splits",
    "finish_text_pairs",
    "hold_out",
    "load_labelled_files",
    "load_text_pair_files",
    "load_text_pairs",
    "load_text_pairs_from_hub",
    "read_table",
    "subsample",
    "to_classification",
    "to_text_pairs",
]
