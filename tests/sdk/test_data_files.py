"""sdk.data through Arrow: the new error messages, the on-disk cache, flat memory per row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.data import DataColumnError, DataFileError, cache_usage, load_labelled_files, read_table

ROWS = [("good film", "pos"), ("bad film", "neg"), ("great", "pos"), ("awful", "neg")] * 5


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PEFTLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_semicolon_delimited_csv_gets_a_delimiter_hint(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("text;label\n" + "".join(f"{t};{label}\n" for t, label in ROWS))
    with pytest.raises(DataColumnError) as info:
        load_labelled_files(path, None, {})
    message = str(info.value)
    assert "no text column 'text'; the columns are: text;label" in message
    assert "looks semicolon-delimited: save the file comma-separated" in message


def test_a_comma_separated_csv_gets_no_delimiter_hint(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("sentence,stars\nnice,1\nbad,0\n")
    with pytest.raises(DataColumnError) as info:
        load_labelled_files(path, None, {})
    assert "delimited" not in str(info.value)


def test_a_broken_jsonl_line_is_named_by_number(tmp_path: Path, cache: Path) -> None:
    lines = [json.dumps({"text": t, "label": label}) for t, label in ROWS]
    lines[6] = '{"text": "cut off", "label": '
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataFileError, match=r"broken.jsonl: line 7 is not valid JSON: Expecting value"
    ):
        read_table(path)


def test_a_jsonl_line_that_is_not_an_object_is_named(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('{"text": "a", "label": 1}\n[1, 2]\n')
    with pytest.raises(DataFileError, match=r"line 2 is not a JSON object"):
        read_table(path)


def test_a_file_is_converted_once_and_reread_from_the_cache(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in ROWS))
    first = load_labelled_files(path, None, {}, validation_fraction=0.2)
    files_after_first = {p: p.stat().st_mtime_ns for p in cache.rglob("*.arrow")}
    second = load_labelled_files(path, None, {}, validation_fraction=0.2)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.arrow")} == files_after_first
    assert second.train._fingerprint == first.train._fingerprint  # what tokenizing keys on
    assert list(second.validation["text"]) == list(first.validation["text"])
    assert sum(u.bytes for u in cache_usage() if u.part == "datasets") > 0


def test_an_edited_file_is_read_again(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in ROWS))
    first = load_labelled_files(path, None, {})
    path.write_text("text,label\n" + "".join(f"{t} again,{label}\n" for t, label in ROWS * 2))
    second = load_labelled_files(path, None, {})
    assert len(second.train) + len(second.validation) == 40
    assert second.train._fingerprint != first.train._fingerprint


def test_stratified_hold_out_keeps_the_class_balance(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "skewed.csv"
    rows = [(f"row {i}", "rare" if i % 10 == 0 else "common") for i in range(1000)]
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    splits = load_labelled_files(path, None, {}, validation_fraction=0.2)
    assert (len(splits.train), len(splits.validation)) == (800, 200)
    assert splits.label_names == ["common", "rare"]
    assert sum(splits.validation["label"]) == 20  # exactly 10 % rare, as in the file
    assert not set(splits.train["text"]) & set(splits.validation["text"])
