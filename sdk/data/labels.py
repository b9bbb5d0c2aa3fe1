"""Label rules and label encoding: class ids or names in, a `ClassLabel` column out.

The rules look only at each file's distinct labels (a handful of values, however
many rows); the encoding itself is one Arrow pass that also drops the empty rows
and strips the text, written by `datasets.Dataset.map` to the cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sdk.data.cache import cache_root
from sdk.data.columns import LabelledRows, as_text, is_empty_text, is_missing, strip_if_text
from sdk.data.errors import DataLabelError
from sdk.data.files import ROWS_PER_BATCH
from sdk.data.memory import release_mapped_pages


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


def _as_int(value: Any) -> int | None:
    """An integer label given as int, integral float or digit string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _as_number(value)  # "1.0", as a float column saved to CSV writes it
    return int(number) if number is not None and number.is_integer() else None


def _show(values: list[Any]) -> str:
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:5])


def check_label_kinds(splits: Sequence[LabelledRows]) -> None:
    """Labels are class ids (whole numbers) or names: fractions and a mix of both are refused.

    Fractional labels (0.5, 2.75) are a regression target, not classes; numbers mixed
    with names ("1", "positive") mean a typo or a shifted column, not a label set.
    """
    all_numbers: list[Any] = []
    all_names: list[Any] = []
    for part in splits:
        numbers = [v for v in part.distinct if _as_number(v) is not None]
        fractions = [v for v in numbers if not _as_number(v).is_integer()]  # type: ignore[union-attr]
        if fractions:
            raise DataLabelError(
                f"labels must be whole numbers (class ids) or names; {_show(fractions)} "
                "are fractional numbers, a regression target rather than classes",
                path=part.path,
                column=part.label_column,
            )
        all_numbers += numbers
        all_names += [v for v in part.distinct if _as_number(v) is None]
        if all_numbers and all_names:
            raise DataLabelError(
                f"labels mix numbers ({_show(all_numbers)}) and names ({_show(all_names)}); "
                "use class ids or names, not both (a typo or a shifted column?)",
                path=part.path,
                column=part.label_column,
            )


def label_codes(
    splits: Sequence[LabelledRows], label_names: Sequence[str] | None = None
) -> tuple[list[dict[Any, int]], list[str]]:
    """For each split, its distinct labels -> 0..n-1; and the label names.

    Integer labels keep their value when they fit the declared `label_names` (or are
    already 0..n-1); other integers and all names are mapped through their sorted
    order. The first split is the training split: a label only a later split has is refused.
    """
    check_label_kinds(splits)
    declared = list(label_names or [])
    if all(_as_int(v) is not None for part in splits for v in part.distinct):
        values = sorted({_as_int(v) for part in splits for v in part.distinct})  # type: ignore[type-var]
        if declared and set(values) <= set(range(len(declared))):
            names, index = declared, {i: i for i in range(len(declared))}
        elif values == list(range(len(values))):
            names, index = [str(i) for i in values], {i: i for i in values}
        else:
            names, index = [str(i) for i in values], {v: k for k, v in enumerate(values)}
        codes = [{v: index[_as_int(v)] for v in part.distinct} for part in splits]
    else:
        raw = [{str(v) for v in part.distinct} for part in splits]
        names = declared if declared and set().union(*raw) <= set(declared) else sorted(raw[0])
        index = {name: k for k, name in enumerate(names)}
        for part, values in zip(splits, raw, strict=True):
            unknown = sorted(values - set(index))
            if unknown:
                raise DataLabelError(
                    f"label(s) {', '.join(map(repr, unknown[:5]))} do not occur in the training "
                    f"file ({splits[0].path}); its labels are: {', '.join(names)}",
                    path=part.path,
                )
        codes = [{v: index[str(v)] for v in part.distinct} for part in splits]
    _check_classes(splits, codes, names)
    return codes, names


def _check_classes(
    splits: Sequence[LabelledRows], codes: list[dict[Any, int]], names: list[str]
) -> None:
    train_classes = set(codes[0].values())
    for part, mapping in zip(splits[1:], codes[1:], strict=True):
        unseen = sorted(set(mapping.values()) - train_classes)
        if unseen:
            raise DataLabelError(
                f"label(s) {', '.join(names[i] for i in unseen)} never occur in the training "
                f"file ({splits[0].path})",
                path=part.path,
            )
    if len(train_classes) < 2:
        only = names[next(iter(train_classes))]
        raise DataLabelError(
            f"every training row has the same label ({only!r}); a classifier needs at least two classes",
            path=splits[0].path,
        )


def encode_labels(
    splits: Sequence[LabelledRows], label_names: Sequence[str] | None = None
) -> tuple[list[Any], list[str]]:
    """Each split as a `datasets.Dataset` of `text` and a `ClassLabel` `label`; the label names.

    Rows with an empty text or label are dropped and the text is stripped in the same pass.
    """
    import datasets

    codes, names = label_codes(splits, label_names)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    encoded = []
    for part, mapping in zip(splits, codes, strict=True):
        source = part.dataset.select_columns([part.text_column, part.label_column])
        encoded.append(
            source.with_format("arrow")
            .map(
                encode_batch,
                batched=True,
                batch_size=ROWS_PER_BATCH,
                writer_batch_size=ROWS_PER_BATCH,
                remove_columns=source.column_names,
                features=features,
                fn_kwargs={
                    "text_column": part.text_column,
                    "label_column": part.label_column,
                    "values": list(mapping),
                    "codes": list(mapping.values()),
                },
                desc="encoding labels",
            )
            .with_format(None)
        )
    return encoded, names


def encode_batch(
    table: Any, text_column: str, label_column: str, values: list[Any], codes: list[int]
) -> Any:
    """Kept rows of one Arrow batch: stripped text, label code (the rules of `to_classification`)."""
    release_mapped_pages(cache_root())  # what the previous batch touched
    import pyarrow as pa
    import pyarrow.compute as pc

    label = table.column(label_column).combine_chunks()
    text = as_text(table.column(text_column).combine_chunks(), "", text_column)
    no_label = is_missing(label)
    keep = pc.invert(pc.or_(no_label, pc.and_(pc.invert(no_label), is_empty_text(text))))
    label = strip_if_text(label.filter(keep))
    position = pc.index_in(label, value_set=pa.array(values, type=label.type))
    return pa.table(
        {"text": text.filter(keep), "label": pc.take(pa.array(codes, pa.int64()), position)}
    )
