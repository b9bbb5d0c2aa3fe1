"""The demo, rotten_tomatoes and csv dataset bundles, and the shared checks in sdk.data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kernel.discovery import BundleLocation
from kernel.params import complete_params
from kernel.registry import read_bundle
from sdk import DatasetContext
from sdk.data import DataColumnError, DataError, DataFileError, DataLabelError
from sdk.validate import errors_only, validate_bundle

DATASETS = Path(__file__).resolve().parents[2] / "plugins" / "datasets"


def load(bundle_id: str, **params: Any):
    """Load a dataset bundle the way the trainer does: manifest params completed, then load()."""
    bundle = read_bundle(BundleLocation(DATASETS / bundle_id, "builtin", 0))
    manifest = bundle.manifest
    ctx = DatasetContext(
        params=complete_params(manifest, params),
        bundle_dir=DATASETS / bundle_id,
        task=manifest.dataset.task,
        label_names=list(manifest.dataset.label_names),
        text_fields=list(manifest.dataset.text_fields),
        label_field=manifest.dataset.label_field,
        seed=42,
    )
    return bundle.instantiate().load(ctx)


@pytest.mark.parametrize("bundle_id", ["demo", "rotten_tomatoes", "csv"])
def test_bundle_validates(bundle_id):
    assert errors_only(validate_bundle(DATASETS / bundle_id)) == []


# demo ---------------------------------------------------------------------------------


def test_demo_is_balanced_and_offline():
    splits = load("demo")
    assert (len(splits.train), len(splits.validation)) == (400, 100)
    assert splits.label_names == ["negative", "positive"]
    assert sum(list(splits.train["label"])) == 200 and sum(list(splits.validation["label"])) == 50
    assert splits.train.column_names == ["text", "label"]
    assert splits.max_length == 64
    # no sentence is repeated, within or across splits
    texts = list(splits.train["text"]) + list(splits.validation["text"])
    assert len(set(texts)) == len(texts)


def test_subsampling_is_seeded_and_applies_to_both_splits():
    a = load("demo", train_samples=50, eval_samples=20, max_length=32)
    b = load("demo", train_samples=50, eval_samples=20, max_length=32)
    assert (len(a.train), len(a.validation)) == (50, 20)
    assert list(a.train["text"]) == list(b.train["text"])
    assert a.max_length == 32


# rotten_tomatoes ------------------------------------------------------------------------


def test_rotten_tomatoes_from_folder(tiny_csv_dir):
    splits = load("rotten_tomatoes", path=str(tiny_csv_dir))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (16, 4, 4)
    assert splits.label_names == ["negative", "positive"]


def test_rotten_tomatoes_missing_folder_is_clear(tmp_path):
    with pytest.raises(DataFileError, match="folder not found"):
        load("rotten_tomatoes", path=str(tmp_path / "nowhere"))


def test_rotten_tomatoes_hub_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="no-such-dataset-xyz.*dataset.path"):
        load("rotten_tomatoes", hub_id="no-such-dataset-xyz")


# csv: formats and labels ----------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


ROWS = [("good film", "pos"), ("bad film", "neg"), ("great", "pos"), ("awful", "neg")] * 5


def test_csv_with_label_names_and_validation_fraction(tmp_path):
    lines = "review,sentiment\n" + "".join(f"{t},{label}\n" for t, label in ROWS)
    path = write(tmp_path / "reviews.csv", lines)
    splits = load(
        "csv",
        path=str(path),
        text_column="review",
        label_column="sentiment",
        validation_fraction=0.2,
    )
    assert splits.label_names == ["neg", "pos"]  # names are sorted
    assert (len(splits.train), len(splits.validation)) == (16, 4)
    assert sorted(list(splits.validation["label"])) == [0, 0, 1, 1]  # stratified
    again = load(
        "csv",
        path=str(path),
        text_column="review",
        label_column="sentiment",
        validation_fraction=0.2,
    )
    assert list(again.validation["text"]) == list(splits.validation["text"])  # seeded
    assert any("held out 4 of 20" in note for note in splits.notes)


def test_jsonl_and_parquet_with_a_validation_file(tmp_path):
    import pandas as pd

    train = write(
        tmp_path / "train.jsonl",
        "".join(json.dumps({"text": t, "label": int(label == "pos")}) + "\n" for t, label in ROWS),
    )
    validation = tmp_path / "validation.parquet"
    pd.DataFrame({"text": ["fine", "poor"], "label": [1, 0]}).to_parquet(validation)
    splits = load("csv", path=str(train), validation_path=str(validation))
    assert splits.label_names == ["0", "1"]
    assert (len(splits.train), len(splits.validation)) == (20, 2)
    assert list(splits.validation["label"]) == [1, 0]


def test_integer_labels_that_do_not_start_at_zero_are_remapped(tmp_path):
    path = write(
        tmp_path / "stars.csv", "text,label\n" + "".join(f"r{i},{1 + i % 3}\n" for i in range(30))
    )
    splits = load("csv", path=str(path))
    assert splits.label_names == ["1", "2", "3"]
    assert set(list(splits.train["label"])) == {0, 1, 2}


def test_empty_text_rows_are_dropped_and_counted(tmp_path):
    body = "".join(f"{t},{label}\n" for t, label in ROWS) + ',pos\n"   ",neg\n'
    path = write(tmp_path / "gaps.csv", "text,label\n" + body)
    splits = load("csv", path=str(path), validation_fraction=0.2)
    assert len(splits.train) + len(splits.validation) == 20
    assert any("dropped 2 row(s) with empty 'text' from gaps.csv" in note for note in splits.notes)


# csv: clear errors ----------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"missing\.csv: file not found"):
        load("csv", path=str(tmp_path / "missing.csv"))


def test_no_file_chosen():
    with pytest.raises(DataFileError, match="set dataset.path"):
        load("csv")


@pytest.mark.parametrize("content", ["", "   \n", "text,label\n"])
def test_empty_file(tmp_path, content):
    path = write(tmp_path / "empty.csv", content)
    with pytest.raises(DataFileError, match="empty.csv: .*(empty|no rows)"):
        load("csv", path=str(path))


def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "cols.csv", "sentence,stars\nnice,1\nbad,0\n")
    with pytest.raises(
        DataColumnError,
        match=r"cols.csv \[text\]: no text column 'text'; the columns are: sentence, stars",
    ):
        load("csv", path=str(path))
    with pytest.raises(DataColumnError, match="no label column 'label'"):
        load("csv", path=str(path), text_column="sentence")


def test_single_class_is_refused(tmp_path):
    path = write(tmp_path / "one.csv", "text,label\n" + "".join(f"t{i},pos\n" for i in range(10)))
    with pytest.raises(DataLabelError, match="one.csv: every training row has the same label"):
        load("csv", path=str(path))


def test_non_utf8_is_refused_with_the_line(tmp_path):
    path = write(tmp_path / "latin1.csv", "text,label\ngood,1\ncaf\u00e9 bad,0\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"latin1.csv: not UTF-8 text: byte 0xe9 at line 3"):
        load("csv", path=str(path))


def test_validation_label_unknown_to_training(tmp_path):
    train = write(
        tmp_path / "train.csv", "text,label\n" + "".join(f"{t},{label}\n" for t, label in ROWS)
    )
    validation = write(tmp_path / "val.csv", "text,label\nmeh,neutral\n")
    with pytest.raises(DataLabelError, match="val.csv: label.*'neutral'.*do not occur"):
        load("csv", path=str(train), validation_path=str(validation))


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path / "data.xlsx", "x")
    with pytest.raises(DataFileError, match="unsupported file type '.xlsx'"):
        load("csv", path=str(path))


def test_errors_are_value_errors():
    assert issubclass(DataError, ValueError)
