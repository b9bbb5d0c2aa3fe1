"""Bad data files through the `csv` dataset bundle and sdk.data: refused clearly, never a crash.

Missing/empty files, missing columns, a single class, non-UTF-8 bytes in the training
file and rows with empty text are covered in tests/plugins/test_datasets.py; this file
adds the label rule, errors in a second file, and very large files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernel.discovery import BundleLocation
from kernel.params import complete_params
from kernel.registry import read_bundle
from sdk import DatasetContext
from sdk.data import DataFileError, DataLabelError
from tests.reliability.builders import REPO_ROOT, cli_env

CSV_BUNDLE = REPO_ROOT / "plugins" / "datasets" / "csv"
TEXTS = ["good film", "bad film", "great", "awful", "fine", "poor", "lovely", "dull"] * 3


def load_csv(**params: Any) -> Any:
    """The csv bundle's load(), with its params completed as a recipe would."""
    bundle = read_bundle(BundleLocation(CSV_BUNDLE, "builtin", 0))
    ctx = DatasetContext(
        params=complete_params(bundle.manifest, params),
        bundle_dir=CSV_BUNDLE,
        task="sequence-classification",
        label_names=[],
        text_fields=["text"],
        label_field="label",
        seed=7,
    )
    return bundle.instantiate().load(ctx)


def write_csv(path: Path, labels: list[Any], header: str = "text,label") -> Path:
    rows = [f"{text},{label}" for text, label in zip(TEXTS, labels, strict=False)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# labels: whole numbers or names --------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        ([0.5, 1.5] * 12, "'0.5', '1.5'"),
        ([0, 1, 0, 2.75] * 6, "'2.75'"),
    ],
    ids=["all fractional", "one fractional"],
)
def test_fractional_labels_are_refused(tmp_path: Path, labels, shown) -> None:
    path = write_csv(tmp_path / "scores.csv", labels)
    with pytest.raises(DataLabelError) as info:
        load_csv(path=str(path))
    message = str(info.value)
    assert message.startswith(f"{path} [label]: labels must be whole numbers (class ids) or names")
    assert f"{shown} are fractional numbers" in message


def test_fractional_labels_in_jsonl_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": t, "score": s}) + "\n"
            for t, s in zip(TEXTS, [0.1, 0.9] * 12, strict=True)
        )
    )
    with pytest.raises(DataLabelError, match=r"scores.jsonl \[score\]: .*0.1, 0.9 are fractional"):
        load_csv(path=str(path), label_column="score")


def test_whole_numbers_written_as_floats_are_class_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "floats.csv", ["0.0", "1.0"] * 12)
    splits = load_csv(path=str(path), validation_fraction=0.25)
    assert splits.label_names == ["0", "1"]
    assert set(splits.train["label"]) == {0, 1}


def test_numbers_mixed_with_names_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", ["pos", "neg"] * 11 + ["1", "0"])
    with pytest.raises(DataLabelError) as info:
        load_csv(path=str(path))
    message = str(info.value)
    assert f"{path} [label]: labels mix numbers ('1', '0') and names ('pos', 'neg')" in message


def test_names_in_validation_against_numbers_in_training_name_the_validation_file(
    tmp_path: Path,
) -> None:
    train = write_csv(tmp_path / "train.csv", [0, 1] * 12)
    validation = write_csv(tmp_path / "val.csv", ["neg", "pos"] * 2)
    with pytest.raises(DataLabelError, match=r"val.csv \[label\]: labels mix numbers"):
        load_csv(path=str(train), validation_path=str(validation))


# a second file, other separators ---------------------------------------------------------


def test_non_utf8_validation_file_is_named_with_its_line(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", ["pos", "neg"] * 12)
    validation = tmp_path / "val.csv"
    validation.write_bytes(b"text,label\nfine,pos\nok,neg\nna\xefve,pos\n")
    with pytest.raises(
        DataFileError,
        match=r"val.csv: not UTF-8 text: byte 0xef at line 4 \(save the file as UTF-8\)",
    ):
        load_csv(path=str(train), validation_path=str(validation))


def test_tsv_with_a_byte_order_mark_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    rows = "".join(
        f'"{t}\nsecond line"\t{label}\n' for t, label in zip(TEXTS, ["a", "b"] * 12, strict=True)
    )
    path.write_text("\ufefftext\tlabel\n" + rows, encoding="utf-8")
    splits = load_csv(path=str(path), validation_fraction=0.25)
    assert splits.label_names == ["a", "b"]
    assert all(t.endswith("\nsecond line") for t in splits.train["text"])


def test_header_without_text_column_lists_columns_even_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text("\ufeffsentence,stars\nnice,1\nbad,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no text column 'text'; the columns are: sentence, stars"):
        load_csv(path=str(path))


# a 100 MB file -----------------------------------------------------------------------------

BIG_MB = 100


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 100 MB of two-class CSV, written in large blocks (well under a second)."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    block = (
        b"a perfectly ordinary sentence about a film that was rather good,1\n"
        b"another perfectly ordinary sentence about a film that was dull,0\n"
    ) * 8192
    with open(path, "wb") as handle:
        handle.write(b"text,label\n")
        for _ in range(BIG_MB * 2**20 // len(block) + 1):
            handle.write(block)
    return path


def test_a_file_above_the_size_limit_is_refused_before_reading(big_csv: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DataFileError) as info:
        load_csv(path=str(big_csv), max_file_mb=50)
    assert time.monotonic() - started < 2  # a stat, not a parse
    message = str(info.value)
    assert message.startswith(f"{big_csv}: the file is 100.")
    assert "MB, above the limit of 50 MB" in message and "max_file_mb" in message


MEASURE = """
import resource, sys, time
import pandas  # the libraries themselves are not what is measured
from sdk.data import encode_labels, read_table, to_classification

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

before = peak_mb()
rows = to_classification(read_table(sys.argv[1]), "text", "label", path=sys.argv[1])
codes, names = encode_labels([rows])
print(len(rows), names, round(peak_mb() - before))
"""


def test_a_100_mb_csv_loads_within_a_memory_bound(big_csv: Path, tmp_path: Path) -> None:
    """Read in a fresh process; peak RSS grows by less than twice the file's size."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(big_csv)],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    count, rest = line.split(" ", 1)
    names, growth_mb = rest.rsplit(" ", 1)
    size_mb = big_csv.stat().st_size / 2**20
    assert int(count) > 1_000_000 and names == "['0', '1']"
    print(f"peak RSS grew {growth_mb} MB for a {size_mb:.0f} MB file")
    assert int(growth_mb) < 2 * size_mb, f"peak RSS grew {growth_mb} MB for a {size_mb:.0f} MB file"
