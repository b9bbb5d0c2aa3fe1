"""The rotten-tomatoes table of docs/study.md, built from the comparison's report.csv.

Plain Python (csv only). `python docs/study_results.py` prints the table that
section 4 of the study holds between its `rotten-tomatoes` markers;
tests/docs/test_study_table.py checks that the study and the CSV agree.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent / "results" / "rotten_tomatoes" / "report.csv"
BEGIN = "<!-- rotten-tomatoes table: begin -->"
END = "<!-- rotten-tomatoes table: end -->"

#: (report.csv column, heading, format) of the study's table, in order
COLUMNS = (
    ("technique", "technique", "{}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("accuracy_low", "95 % interval low", "{:.3f}"),
    ("accuracy_high", "95 % interval high", "{:.3f}"),
    ("f1_macro", "macro F1", "{:.4f}"),
    ("trainable_params", "trainable params", "{:,.0f}"),
    ("trainable_percent", "trainable %", "{:.3f}"),
    ("train_runtime_s", "train time (s)", "{:,.0f}"),
    ("peak_memory_mb", "peak memory (MiB)", "{:,.0f}"),
    ("adapter_size_mb", "saved (MiB)", "{:,.2f}"),
    ("learning_rate", "learning rate", "{:g}"),
)


def read_rows(text: str) -> list[dict[str, str]]:
    """The completed runs of a report.csv, in its order."""
    return [row for row in csv.DictReader(io.StringIO(text)) if row.get("status") == "completed"]


def cell(value: str, fmt: str) -> str:
    if value in ("", None):
        return "-"
    if fmt == "{}":
        return value
    return fmt.format(float(value))


def table(text: str) -> str:
    """The Markdown table of the completed runs."""
    lines = [
        "| " + " | ".join(heading for _, heading, _ in COLUMNS) + " |",
        "|---|" + "---:|" * (len(COLUMNS) - 1),
    ]
    for row in read_rows(text):
        lines.append("| " + " | ".join(cell(row.get(c, ""), f) for c, _, f in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT
    print(BEGIN)
    print(table(path.read_text(encoding="utf-8")))
    print(END)
