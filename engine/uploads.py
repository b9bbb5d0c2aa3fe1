"""Store a user's uploaded dataset file: a sanitised name, validated before it is written.

The app's Datasets page and the HTTP service both store uploads here, under
<data dir>/datasets. The uploaded name is never used as a path.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.errors import DatasetError
from kernel.runs import atomic_write_text

SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "json": ".jsonl"}
MAX_LABELS = 100


def sanitize_name(name: str) -> str:
    """A file stem made of letters, digits, - and _ only (no folders, no dots, no ..)."""
    stem = Path(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:60]
    return slug or "dataset"


def target_path(folder: Path, name: str, suffix: str) -> Path:
    """A new file in `folder` for `name`; never outside it, never over an existing file."""
    stem = sanitize_name(name)
    folder = folder.resolve()
    candidate = folder / f"{stem}{suffix}"
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}{suffix}"
        number += 1
    if candidate.parent != folder:  # cannot happen after sanitising; refuse anyway
        raise ValueError(f"refusing to write outside {folder}")
    return candidate


def read_table(data: bytes, suffix: str) -> Any:
    """The file's rows as a pandas DataFrame (CSV, or JSON lines)."""
    import pandas as pd

    if suffix == ".csv":
        return pd.read_csv(io.BytesIO(data))
    return pd.read_json(io.BytesIO(data), lines=True)


def columns_file(path: Path) -> Path:
    return path.with_name(path.name + ".columns.json")


@dataclass(frozen=True)
class StoredDataset:
    path: Path
    rows: int
    labels: list[str]
    text_column: str
    label_column: str


def store_dataset(
    data: bytes,
    filename: str,
    folder: Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    max_bytes: int | None = None,
) -> StoredDataset:
    """Validate an uploaded labelled file and store it under a new sanitised name."""
    suffix = SUFFIXES.get(Path(filename).suffix.lstrip(".").lower())
    if suffix is None:
        raise DatasetError(f"'{filename}': expected a .csv, .jsonl or .json file", field="file")
    if max_bytes is not None and len(data) > max_bytes:
        raise DatasetError(f"file is larger than {max_bytes // 2**20} MB", field="file")
    try:
        table = read_table(data, suffix)
    except Exception as exc:  # noqa: BLE001 - any parser error is the file's fault
        raise DatasetError(f"cannot read '{filename}': {exc}", field="file") from None
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in table.columns:
            have = ", ".join(map(str, table.columns))
            raise DatasetError(f"no {role} column '{column}' (columns: {have})", field=role)
    labels = sorted({str(v) for v in table[label_column].dropna()})
    if len(table) == 0 or len(labels) < 2:
        raise DatasetError("need at least two rows with two different labels", field="label")
    if len(labels) > MAX_LABELS:
        raise DatasetError(f"{len(labels)} different labels: is '{label_column}' really the label?")
    folder.mkdir(parents=True, exist_ok=True)
    path = target_path(folder, filename, suffix)
    path.write_bytes(data)
    columns = {"text": text_column, "label": label_column}
    atomic_write_text(columns_file(path), json.dumps(columns))
    return StoredDataset(path, len(table), labels, text_column, label_column)
