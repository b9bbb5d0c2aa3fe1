"""Reading labelled text files into splits: one place for the checks every dataset needs.

Dataset bundles call `read_table` for each file, `to_classification` to turn a
table into `text`/`label` rows, and `finish_splits` to subsample and package the
result. Generation datasets call `load_text_pair_files` (or
`load_text_pairs_from_hub`) instead, which give prompt/completion or
source/target rows. Every problem is a `DataError` (a ValueError) naming the
file and column.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.context import DatasetSplits

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
#: files above this size are refused (loading takes a few times the file's size in memory)
MAX_FILE_MB = 256


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


@dataclass
class LabelledRows:
    """`text` and `label` columns of one file, with what was dropped on the way."""

    texts: list[str]
    labels: list[Any]
    path: str
    dropped_empty: int = 0
    notes: list[str] = field(default_factory=list)
    label_column: str = "label"


def read_table(path: str | Path, *, max_mb: float | None = MAX_FILE_MB) -> Any:
    """A pandas DataFrame from .csv/.tsv/.jsonl/.json/.parquet, refusing bad files clearly.

    Files larger than `max_mb` MB (None or 0: no limit) are refused before a byte is read.
    """
    import pandas as pd

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
            f"the file is {size / 2**20:,.1f} MB, above the limit of {max_mb:g} MB (loading "
            "needs a few times its size in memory); raise the dataset's max_file_mb param "
            "or use a smaller file",
            path=path,
        )
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv"):
            frame = _read_csv(path, "\t" if suffix == ".tsv" else ",")
        else:
            text = _read_utf8(path)
            if not text.strip():
                raise DataFileError("the file is empty", path=path)
            if suffix == ".jsonl" or (suffix == ".json" and not text.lstrip().startswith("[")):
                frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            else:
                frame = pd.read_json(io.StringIO(text), dtype=False)
    except DataError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise DataFileError(f"cannot parse the file: {exc}", path=path) from None
    if len(frame) == 0:
        raise DataFileError("the file has a header but no rows", path=path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_csv(path: Path, sep: str) -> Any:
    """Parsed straight from the file: no copy of the whole text is held next to the table."""
    import pandas as pd

    try:
        return pd.read_csv(path, sep=sep, keep_default_na=False, dtype=object, encoding="utf-8-sig")
    except UnicodeDecodeError:
        _read_utf8(path)  # raises a DataFileError naming the line
        raise
    except pd.errors.EmptyDataError:
        raise DataFileError("the file is empty", path=path) from None


def _read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (save the file as UTF-8)",
            path=path,
        ) from None


def to_classification(
    frame: Any, text_column: str, label_column: str, *, path: str | Path
) -> LabelledRows:
    """Pick the text and label columns; drop rows whose text or label is empty."""
    columns = [str(c) for c in frame.columns]
    for wanted, role in ((text_column, "text"), (label_column, "label")):
        if wanted not in columns:
            raise DataColumnError(
                f"no {role} column '{wanted}'; the columns are: {', '.join(columns)}",
                path=path,
                column=wanted,
            )
    texts: list[str] = []
    labels: list[Any] = []
    dropped_text = dropped_label = 0
    for text, label in zip(frame[text_column].tolist(), frame[label_column].tolist(), strict=True):
        if _is_missing(label):
            dropped_label += 1
            continue
        text = "" if _is_missing(text) else str(text).strip()
        if not text:
            dropped_text += 1
            continue
        texts.append(text)
        labels.append(label.strip() if isinstance(label, str) else label)
    notes = []
    name = Path(path).name
    if dropped_text:
        notes.append(f"dropped {dropped_text} row(s) with empty '{text_column}' from {name}")
    if dropped_label:
        notes.append(f"dropped {dropped_label} row(s) with empty '{label_column}' from {name}")
    if not texts:
        raise DataColumnError(
            f"no usable rows: every row has an empty '{text_column}' or '{label_column}'",
            path=path,
            column=text_column,
        )
    return LabelledRows(texts, labels, str(path), dropped_text + dropped_label, notes, label_column)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _as_int(value: Any) -> int | None:
    """An integer label given as int, integral float or digit string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        number = _as_number(text)  # "1.0", as a float column saved to CSV writes it
        if number is not None and number.is_integer():
            return int(number)
    return None


def _as_number(value: Any) -> float | None:
    """A finite number given as int, float or numeric text; else None (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def check_label_kinds(splits: Sequence[LabelledRows]) -> None:
    """Labels are class ids (whole numbers) or names: fractions and a mix of both are refused.

    Fractional labels (0.5, 2.75) are a regression target, not classes; numbers mixed
    with names ("1", "positive") mean a typo or a shifted column, not a label set.
    """

    def show(values: list[Any]) -> str:
        return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:5])

    all_numbers: list[Any] = []
    all_names: list[Any] = []
    for part in splits:
        try:
            distinct = list(dict.fromkeys(part.labels))
        except TypeError:  # unhashable values (lists from JSON): judge them one by one
            distinct = list(part.labels)
        numbers = [v for v in distinct if _as_number(v) is not None]
        fractions = [v for v in numbers if not _as_number(v).is_integer()]  # type: ignore[union-attr]
        if fractions:
            raise DataLabelError(
                f"labels must be whole numbers (class ids) or names; {show(fractions)} "
                "are fractional numbers, a regression target rather than classes",
                path=part.path,
                column=part.label_column,
            )
        names = [v for v in distinct if _as_number(v) is None]
        all_numbers += numbers
        all_names += names
        if all_numbers and all_names:
            raise DataLabelError(
                f"labels mix numbers ({show(all_numbers)}) and names ({show(all_names)}); "
                "use class ids or names, not both (a typo or a shifted column?)",
                path=part.path,
                column=part.label_column,
            )


def encode_labels(
    splits: Sequence[LabelledRows], label_names: Sequence[str] | None = None
) -> tuple[list[list[int]], list[str]]:
    """Labels of every split as 0..n-1 ints, and the label names.

    Labels are all whole numbers or all names (see `check_label_kinds`).
    Integer labels keep their value when they fit the declared `label_names`
    (or are already 0..n-1); other integers and all names are mapped through
    their sorted order. The first split is the training split: a label that
    appears only in a later split is refused.
    """
    check_label_kinds(splits)
    train = splits[0]
    ints = [[_as_int(v) for v in part.labels] for part in splits]
    all_int = all(i is not None for part in ints for i in part)
    declared = list(label_names or [])
    if all_int:
        values = sorted({i for part in ints for i in part})  # type: ignore[type-var]
        if declared and set(values) <= set(range(len(declared))):
            names, mapping = declared, {i: i for i in range(len(declared))}
        elif values == list(range(len(values))):
            names, mapping = [str(i) for i in values], {i: i for i in values}
        else:
            names = [str(i) for i in values]
            mapping = {v: k for k, v in enumerate(values)}
        encoded = [[mapping[i] for i in part] for part in ints]  # type: ignore[index]
        train_classes = set(encoded[0])
    else:
        raw = [[str(v) for v in part.labels] for part in splits]
        if declared and set().union(*raw) <= set(declared):
            names = declared
        else:
            names = sorted(set(raw[0]))
        index = {name: k for k, name in enumerate(names)}
        for part, values in zip(splits, raw, strict=True):
            unknown = sorted(set(values) - set(index))
            if unknown:
                raise DataLabelError(
                    f"label(s) {', '.join(map(repr, unknown[:5]))} do not occur in the training "
                    f"file ({train.path}); its labels are: {', '.join(names)}",
                    path=part.path,
                )
        encoded = [[index[v] for v in values] for values in raw]
        train_classes = set(encoded[0])
    for part, codes in zip(splits[1:], encoded[1:], strict=True):
        unseen = sorted(set(codes) - train_classes)
        if unseen:
            raise DataLabelError(
                f"label(s) {', '.join(names[i] for i in unseen)} never occur in the training "
                f"file ({train.path})",
                path=part.path,
            )
    if len(train_classes) < 2:
        only = names[next(iter(train_classes))]
        raise DataLabelError(
            f"every training row has the same label ({only!r}); a classifier needs at least two classes",
            path=train.path,
        )
    return encoded, names


def split_off(
    rows: LabelledRows, codes: list[int], fraction: float, seed: int
) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]]]:
    """Hold out `fraction` of the rows as validation, stratified by label where possible."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(codes)))
    if len(indices) < 4:
        raise DataFileError(
            f"only {len(indices)} usable row(s); too few to hold out a validation part",
            path=rows.path,
        )
    try:
        train_idx, val_idx = train_test_split(
            indices, test_size=fraction, random_state=seed, stratify=codes
        )
    except ValueError:  # a class too small to stratify: fall back to a plain seeded split
        train_idx, val_idx = train_test_split(indices, test_size=fraction, random_state=seed)
    pick = lambda idx: ([rows.texts[i] for i in idx], [codes[i] for i in idx])  # noqa: E731
    return pick(sorted(train_idx)), pick(sorted(val_idx))


def make_dataset(texts: list[str], labels: list[int]) -> Any:
    import datasets

    return datasets.Dataset.from_dict({"text": list(texts), "label": [int(v) for v in labels]})


def subsample(dataset: Any, n: int, seed: int) -> Any:
    """The first `n` rows after a seeded shuffle; all rows when n is 0 or larger than the split."""
    if not n or n >= len(dataset):
        return dataset
    return dataset.shuffle(seed=seed).select(range(n)).flatten_indices()


def finish_splits(
    train: Any,
    validation: Any,
    label_names: list[str],
    params: dict[str, Any],
    *,
    seed: int,
    test: Any | None = None,
    notes: list[str] | None = None,
) -> DatasetSplits:
    """Apply the common params (train_samples, eval_samples, max_length) and package the splits."""
    train = subsample(train, int(params.get("train_samples") or 0), seed)
    validation = subsample(validation, int(params.get("eval_samples") or 0), seed)
    if len(validation) == 0:
        raise DataError("the validation split is empty")
    max_length = params.get("max_length")
    return DatasetSplits(
        train=train,
        validation=validation,
        test=test,
        label_names=list(label_names),
        task="sequence-classification",
        max_length=int(max_length) if max_length else None,
        notes=list(notes or []),
    )


def load_labelled_files(
    train_path: str | Path,
    validation_path: str | Path | None,
    params: dict[str, Any],
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    test_path: str | Path | None = None,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """The whole path from files to DatasetSplits, as the file-based bundles use it."""
    parts = [train_path] + ([validation_path] if validation_path else [])
    parts += [test_path] if test_path else []
    max_mb = params.get("max_file_mb", MAX_FILE_MB)  # 0 = no limit
    rows = [
        to_classification(
            read_table(p, max_mb=max_mb), text_column, label_column, path=Path(p).expanduser()
        )
        for p in parts
    ]
    encoded, names = encode_labels(rows, label_names)
    notes = [note for part in rows for note in part.notes]
    if validation_path:
        train = make_dataset(rows[0].texts, encoded[0])
        validation = make_dataset(rows[1].texts, encoded[1])
    else:
        (tt, tl), (vt, vl) = split_off(rows[0], encoded[0], validation_fraction, seed)
        train, validation = make_dataset(tt, tl), make_dataset(vt, vl)
        notes.append(
            f"held out {len(vt)} of {len(rows[0].texts)} rows of {Path(train_path).name} "
            f"for validation (seed {seed})"
        )
    test = make_dataset(rows[-1].texts, encoded[-1]) if test_path else None
    return finish_splits(train, validation, names, params, seed=seed, test=test, notes=notes)


# --- text pairs: the generation tasks (causal-lm: prompt/completion; seq2seq: source/target) ---

#: the two columns `DatasetSplits` holds for each generation task
PAIR_COLUMNS = {"causal-lm": ("prompt", "completion"), "seq2seq": ("source", "target")}


@dataclass
class TextPairs:
    """Inputs and outputs of one file, with what was dropped on the way."""

    inputs: list[str]
    outputs: list[str]
    path: str
    notes: list[str] = field(default_factory=list)


def to_text_pairs(
    frame: Any, input_column: str, output_column: str, *, path: str | Path
) -> TextPairs:
    """Pick the input and output columns; drop rows where either is empty."""
    columns = [str(c) for c in frame.columns]
    for wanted, role in ((input_column, "input"), (output_column, "output")):
        if wanted not in columns:
            raise DataColumnError(
                f"no {role} column '{wanted}'; the columns are: {', '.join(columns)}",
                path=path,
                column=wanted,
            )
    inputs: list[str] = []
    outputs: list[str] = []
    dropped = 0
    for source, target in zip(
        frame[input_column].tolist(), frame[output_column].tolist(), strict=True
    ):
        source = "" if _is_missing(source) else str(source).strip()
        target = "" if _is_missing(target) else str(target).strip()
        if not source or not target:
            dropped += 1
            continue
        inputs.append(source)
        outputs.append(target)
    if not inputs:
        raise DataColumnError(
            f"no usable rows: every row has an empty '{input_column}' or '{output_column}'",
            path=path,
            column=input_column,
        )
    notes = []
    if dropped:
        notes.append(
            f"dropped {dropped} row(s) with an empty '{input_column}' or '{output_column}' "
            f"from {Path(path).name}"
        )
    return TextPairs(inputs, outputs, str(path), notes)


def make_pair_dataset(pairs: TextPairs, task: str, indices: Sequence[int] | None = None) -> Any:
    import datasets

    first, second = PAIR_COLUMNS[task]
    picked = range(len(pairs.inputs)) if indices is None else indices
    return datasets.Dataset.from_dict(
        {first: [pairs.inputs[i] for i in picked], second: [pairs.outputs[i] for i in picked]}
    )


def finish_text_pairs(
    train: TextPairs,
    validation: TextPairs | None,
    task: str,
    params: dict[str, Any],
    *,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """Split off validation when there is no validation part, apply the common params, package.

    Common params: train_samples, eval_samples, max_length (input tokens),
    max_target_length (seq2seq output tokens) and template (the input template,
    `{input}` marking the text).
    """
    import random

    if task not in PAIR_COLUMNS:
        raise DataError(f"task '{task}' has no text pairs (use one of {', '.join(PAIR_COLUMNS)})")
    notes = list(train.notes) + (list(validation.notes) if validation else [])
    if validation is not None:
        train_set = make_pair_dataset(train, task)
        validation_set = make_pair_dataset(validation, task)
    else:
        n = len(train.inputs)
        if n < 4:
            raise DataFileError(
                f"only {n} usable row(s); too few to hold out a validation part", path=train.path
            )
        order = list(range(n))
        random.Random(seed).shuffle(order)
        held = max(1, round(n * validation_fraction))
        train_set = make_pair_dataset(train, task, sorted(order[held:]))
        validation_set = make_pair_dataset(train, task, sorted(order[:held]))
        notes.append(
            f"held out {held} of {n} rows of {Path(train.path).name} for validation (seed {seed})"
        )
    train_set = subsample(train_set, int(params.get("train_samples") or 0), seed)
    validation_set = subsample(validation_set, int(params.get("eval_samples") or 0), seed)
    template = params.get("template") or None
    if template and "{input}" not in template:
        raise DataError(f"template {template!r} has no {{input}} placeholder for the text")
    max_length = params.get("max_length")
    max_target = params.get("max_target_length")
    return DatasetSplits(
        train=train_set,
        validation=validation_set,
        task=task,
        max_length=int(max_length) if max_length else None,
        notes=notes,
        input_template=template,
        max_target_length=int(max_target) if max_target else None,
    )


def load_text_pair_files(
    train_path: str | Path,
    validation_path: str | Path | None,
    task: str,
    params: dict[str, Any],
    *,
    input_column: str,
    output_column: str,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """Files (CSV, JSONL, JSON, Parquet) -> generation splits with the task's two columns."""
    max_mb = params.get("max_file_mb", MAX_FILE_MB)
    parts = [
        to_text_pairs(
            read_table(p, max_mb=max_mb), input_column, output_column, path=Path(p).expanduser()
        )
        for p in [train_path] + ([validation_path] if validation_path else [])
    ]
    return finish_text_pairs(
        parts[0],
        parts[1] if len(parts) > 1 else None,
        task,
        params,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def load_text_pairs_from_hub(
    dataset_id: str,
    task: str,
    params: dict[str, Any],
    *,
    input_column: str,
    output_column: str,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetSplits:
    """A hub dataset's train (and validation, if it has one) split -> generation splits."""
    import datasets

    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:  # offline, unknown id, gated: the message says which
        raise DataFileError(
            f"cannot load hub dataset '{dataset_id}' (offline or unknown id?): {exc}",
            path=dataset_id,
        ) from None

    def pairs(split: str) -> TextPairs:
        return to_text_pairs(
            loaded[split].to_pandas(), input_column, output_column, path=f"{dataset_id}:{split}"
        )

    if "train" not in loaded:
        raise DataFileError(f"has no train split (splits: {', '.join(loaded)})", path=dataset_id)
    validation = next((s for s in ("validation", "valid", "dev", "test") if s in loaded), None)
    return finish_text_pairs(
        pairs("train"),
        pairs(validation) if validation else None,
        task,
        params,
        validation_fraction=validation_fraction,
        seed=seed,
    )


def load_text_pairs(
    params: dict[str, Any],
    task: str,
    *,
    input_column: str,
    output_column: str,
    shipped: tuple[str | Path, str | Path] | None = None,
    seed: int = 42,
) -> DatasetSplits:
    """A generation dataset bundle's whole `load`: from the `hub_id` param, else the `path`
    (and `validation_path`) params, else the `shipped` (train, validation) files."""
    options: dict[str, Any] = {
        "input_column": input_column,
        "output_column": output_column,
        "validation_fraction": float(params.get("validation_fraction") or 0.1),
        "seed": seed,
    }
    hub_id = (params.get("hub_id") or "").strip()
    if hub_id:
        return load_text_pairs_from_hub(hub_id, task, params, **options)
    path = (params.get("path") or "").strip()
    if path:
        validation = (params.get("validation_path") or "").strip() or None
        return load_text_pair_files(path, validation, task, params, **options)
    if shipped is None:
        raise DataFileError("no file chosen: set dataset.path to a .jsonl, .csv or .parquet file")
    return load_text_pair_files(shipped[0], shipped[1], task, params, **options)
