"""The errors data loading raises: each names the file and, where relevant, the column."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Data that cannot become a labelled split; names the file and, where relevant, the column."""

    def __init__(self, message: str, *, path: str | Path | None = None, column: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.column = column
        where = self.path or ""
        if column:
            where += f" [{column}]" if where else f"[{column}]"
        super().__init__(f"{where}: {message}" if where else message)


class DataFileError(DataError):
    """A file that is missing, empty, not UTF-8 or not parseable."""


class DataColumnError(DataError):
    """A missing column, or a column whose values do not fit."""


class DataLabelError(DataError):
    """Labels that cannot train a classifier (one class only, unknown names, ...)."""
