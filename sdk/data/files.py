"""Reading a table file into a memory-mapped `datasets.Dataset`, refusing bad files clearly.

CSV, TSV, JSON Lines, JSON and Parquet go through the `datasets` packaged builders:
the file is read in chunks into Arrow files under peftlab's cache (reused while the
file's path, size and modification time stay the same), so memory stays flat however
many rows the file has. The checks that need the raw bytes (UTF-8, broken JSON lines,
the delimiter) run only when a read fails, to name the line that is at fault.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

from sdk.data.cache import cache_dir, cache_root
from sdk.data.errors import DataError, DataFileError
from sdk.data.memory import release_mapped_pages

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: files above this size are refused before a byte is read (0 or None: no limit)
MAX_FILE_MB = 2048
_CHUNK = 1 << 20
#: rows per Arrow record batch written to the cache: large batches keep the batch headers
#: few, and reading a header faults in the pages around it (64 KiB at a time on Linux)
ROWS_PER_BATCH = 100_000


def read_table(path: str | Path, *, max_mb: float | None = MAX_FILE_MB) -> Any:
    """A `datasets.Dataset` from .csv/.tsv/.jsonl/.json/.parquet, column names stripped.

    Files larger than `max_mb` MB (None or 0: no limit) are refused before a byte is read.
    """
    path = checked_file(path, max_mb)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            dataset = _load("parquet", path)
        elif suffix in (".csv", ".tsv"):
            dataset = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        else:
            dataset = _read_json(path)
    except DataError:
        raise
    except Exception as exc:  # the builders raise many types for a malformed file
        raise _explain(exc, path) from None
    release_mapped_pages(cache_root())  # opening the table touched its batch headers
    if dataset.num_rows == 0:
        raise DataFileError("the file has a header but no rows", path=path)
    renames = {c: str(c).strip() for c in dataset.column_names if str(c).strip() != c}
    return dataset.rename_columns(renames) if renames else dataset


def checked_file(path: str | Path, max_mb: float | None) -> Path:
    """The path, once it names a non-empty file of a known type within the size limit."""
    path = Path(path).expanduser()
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise DataFileError(f"file not found{hint}", path=path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataFileError(
            f"unsupported file type '{suffix}'; use one of {', '.join(TABLE_SUFFIXES)}", path=path
        )
    size = path.stat().st_size
    if size == 0:
        raise DataFileError("the file is empty", path=path)
    if max_mb and size > max_mb * 2**20:
        raise DataFileError(
            f"the file is {size / 2**20:,.1f} MB, above the limit of {max_mb:g} MB; raise "
            "the dataset's max_file_mb param or use a smaller file",
            path=path,
        )
    return path


def _load(builder: str, path: Path, **options: Any) -> Any:
    import datasets

    return datasets.load_dataset(
        builder,
        data_files=str(path),
        split="train",
        cache_dir=str(cache_dir("datasets")),
        writer_batch_size=ROWS_PER_BATCH,
        **options,
    )


def _read_delimited(path: Path, sep: str) -> Any:
    """Every column as text, as it is written (empty cells stay empty strings, "NA" stays "NA")."""
    import datasets
    import pandas as pd

    try:  # the header and one row, to declare every column a string
        head = pd.read_csv(path, sep=sep, nrows=1, dtype=str, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataFileError("the file is empty", path=path) from None
    if len(head) == 0:
        raise DataFileError("the file has a header but no rows", path=path)
    features = datasets.Features({c: datasets.Value("string") for c in head.columns})
    return _load(
        "csv",
        path,
        sep=sep,
        keep_default_na=False,
        encoding="utf-8-sig",
        features=features,
        chunksize=ROWS_PER_BATCH,
    )


def _read_json(path: Path) -> Any:
    if not _first_bytes(path).strip():
        raise DataFileError("the file is empty", path=path)
    return _load("json", path)


def _first_bytes(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _explain(exc: BaseException, path: Path) -> DataFileError:
    """The most useful message for a failed read: bad bytes, a bad JSON line, a delimiter."""
    bad_utf8 = utf8_problem(path)
    if bad_utf8:
        return DataFileError(bad_utf8, path=path)
    if path.suffix.lower() in (".jsonl", ".json"):
        bad_line = json_lines_problem(path)
        if bad_line:
            return DataFileError(bad_line, path=path)
    reason = _innermost(exc)
    return DataFileError(f"cannot parse the file: {reason}{delimiter_hint(path)}", path=path)


def _innermost(exc: BaseException) -> str:
    """`datasets` wraps the parser's error; the parser's own message says what is wrong."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return str(seen).strip() or type(seen).__name__


def utf8_problem(path: Path) -> str | None:
    """Where the file stops being UTF-8 (byte and line), read in chunks; None when it is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n")
                return (
                    f"not UTF-8 text: byte 0x{chunk[exc.start]:02x} at line {line} "
                    "(save the file as UTF-8)"
                )
            lines += chunk.count(b"\n")
    return None


def json_lines_problem(path: Path) -> str | None:
    """The first line of a JSON Lines file that is not a JSON object; None when all are."""
    if _first_bytes(path).lstrip().startswith(b"["):
        return None  # one JSON document, not lines
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            if not isinstance(value, dict):
                return f"line {number} is not a JSON object (one {{...}} per line)"
    return None


_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def delimiter_hint(path: Path, columns: list[str] | None = None) -> str:
    """' (the header looks semicolon-delimited ...)' when a .csv header splits on another mark."""
    if path.suffix.lower() != ".csv":
        return ""
    if columns is not None and len(columns) != 1:
        return ""
    header = _first_bytes(path).decode("utf-8", "replace").lstrip("\ufeff").split("\n", 1)[0]
    if "," in header and columns is None:
        return ""
    for mark, name in _DELIMITERS.items():
        if mark in header:
            return (
                f" (the header looks {name}-delimited: save the file comma-separated"
                + (", or as .tsv" if mark == "\t" else "")
                + ")"
            )
    return ""
