"""The measured tables in docs/study.md match docs/results/rotten_tomatoes/report.csv, and
the LoRA variants' table each variant's report.csv under lora_variants/.

The study's table is read back from its Markdown (not rebuilt), so an edit of
either file that makes them disagree fails here: the same techniques, in the
same order, with the same accuracy and trainable-parameter count to the
printed precision.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from docs import study_results

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "docs" / "study.md"
REPORT = REPO / "docs" / "results" / "rotten_tomatoes" / "report.csv"


def study_table() -> list[dict[str, str]]:
    """The rows of the study's rotten-tomatoes table, by heading."""
    text = STUDY.read_text(encoding="utf-8")
    assert study_results.END in text, "the table's end marker is missing"
    block = text.split(study_results.BEGIN, 1)[1].split(study_results.END, 1)[0]
    lines = [line.strip() for line in block.strip().splitlines() if line.strip().startswith("|")]
    headings = [h.strip() for h in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(dict(zip(headings, cells, strict=True)))
    return rows


@pytest.fixture(scope="module")
def report_rows() -> list[dict[str, str]]:
    if not REPORT.is_file():
        pytest.skip(
            f"{REPORT.relative_to(REPO)} not produced yet (bench/compare_rotten_tomatoes.py)"
        )
    text = STUDY.read_text(encoding="utf-8")
    if study_results.BEGIN not in text:
        pytest.fail(
            f"{REPORT.relative_to(REPO)} exists but docs/study.md has no table from it: "
            "paste the output of `python docs/study_results.py` into section 4"
        )
    rows = list(csv.DictReader(io.StringIO(REPORT.read_text(encoding="utf-8"))))
    return [row for row in rows if row["status"] == "completed"]


def test_same_techniques_in_the_same_order(report_rows):
    assert [r["technique"] for r in study_table()] == [r["technique"] for r in report_rows]


def test_same_accuracy_and_size_to_the_printed_precision(report_rows):
    printed = {row["technique"]: row for row in study_table()}
    for row in report_rows:
        shown = printed[row["technique"]]
        assert shown["accuracy"] == f"{float(row['accuracy']):.4f}", row["technique"]
        assert shown["macro F1"] == f"{float(row['f1_macro']):.4f}", row["technique"]
        assert shown["trainable params"] == f"{int(float(row['trainable_params'])):,}"


def test_the_table_is_what_the_generator_prints(report_rows):
    text = STUDY.read_text(encoding="utf-8")
    assert study_results.table(REPORT.read_text(encoding="utf-8")) in text


# the study's LoRA-variant rows and the report folder each was measured into
VARIANTS = {
    "PiSSA initialisation": "pissa",
    "OLoRA initialisation": "olora",
    "EVA initialisation": "eva",
    "CorDA initialisation (IPM)": "corda",
    "LoRA+ ratio 4": "loraplus4",
    "LoRA+ ratio 16 (the paper's suggestion)": "loraplus16",
}


def variant_rows() -> dict[str, list[str]]:
    """The study's table of LoRA variants: label -> (accuracy, eval loss, train time)."""
    text = STUDY.read_text(encoding="utf-8")
    block = text.split("| LoRA variant |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in block.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_the_lora_variant_table_matches_each_variants_report():
    rows = variant_rows()
    assert set(rows) == {"plain (table above)", *VARIANTS}
    for label, folder in VARIANTS.items():
        report = REPORT.parent / "lora_variants" / folder / "report.csv"
        (measured,) = csv.DictReader(io.StringIO(report.read_text(encoding="utf-8")))
        accuracy, loss, seconds = rows[label]
        assert accuracy == f"{float(measured['accuracy']):.4f}", label
        assert loss == f"{float(measured['eval_loss']):.3f}", label
        assert seconds == f"{float(measured['train_runtime_s']):.0f}", label
