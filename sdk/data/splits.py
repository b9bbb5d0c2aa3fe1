"""Holding out validation, subsampling, and packaging splits: one algorithm, `datasets`' own."""

from __future__ import annotations

import math
from typing import Any

from sdk.context import DatasetSplits
from sdk.data.errors import DataError, DataFileError


def hold_out(
    dataset: Any, fraction: float, seed: int, *, path: str, stratify: str | None = None
) -> tuple[Any, Any]:
    """(train, validation): `fraction` of the rows held out, stratified by `stratify` where possible.

    The split is `Dataset.train_test_split`'s (same sizes, same seeded generator). For a
    stratified split its algorithm is fed the label column straight from Arrow:
    `train_test_split(stratify_by_column=...)` reads that column row by row in datasets
    5.2 (84 s for 200k rows on a 2-core CPU).
    """
    if len(dataset) < 4:
        raise DataFileError(
            f"only {len(dataset)} usable row(s); too few to hold out a validation part",
            path=path,
        )
    if stratify:
        indices = _stratified_indices(dataset, stratify, fraction, seed)
        if indices is not None:
            return dataset.select(indices[0]), dataset.select(indices[1])
    parts = dataset.train_test_split(test_size=fraction, seed=seed)
    return parts["train"], parts["test"]


def _stratified_indices(dataset: Any, column: str, fraction: float, seed: int) -> Any:
    """(train, test) row indices stratified by `column`; None when a class is too small.

    `datasets.utils.stratify`'s algorithm (per-class counts by `approximate_mode`, a
    permutation within each class) with numpy arrays where it builds Python lists: its
    lists of numpy scalars take ~40 bytes a row, 200 MB on 5M rows.
    """
    import numpy as np
    from datasets.utils.stratify import approximate_mode

    if dataset._indices is not None:  # an indices mapping: the Arrow column is not in row order
        dataset = dataset.flatten_indices()
    labels = dataset.data.column(column).to_numpy()
    n_test = math.ceil(fraction * len(labels))
    n_train = len(labels) - n_test
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse)
    if counts.min() < 2 or min(n_train, n_test) < len(classes):
        return None
    rng = np.random.default_rng(seed)
    take_train = approximate_mode(counts, n_train, rng)
    take_test = approximate_mode(counts - take_train, n_test, rng)
    by_class = np.split(np.argsort(inverse, kind="mergesort"), np.cumsum(counts)[:-1])
    train, test = [], []
    for members, n_tr, n_te in zip(by_class, take_train, take_test, strict=True):
        members = members[rng.permutation(len(members))]
        train.append(members[:n_tr])
        test.append(members[n_tr : n_tr + n_te])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


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
