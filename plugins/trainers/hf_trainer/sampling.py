"""The Trainer class runs use: length-grouped batches from the `length` column the tokenizer wrote.

transformers 5.24 builds its length-grouped samplers from the training set after removing
the columns the model's forward does not take, `length` among them (and from the
evaluation set without looking at that column); the sampler then measures every example
by reading it (on 1M rows: minutes before the first step and ~170 MB of memory-mapped
pages touched), and holds the order as Python lists of Python ints (~36 bytes a row).
This Trainer hands its samplers the `length` column, read in one Arrow call, and draws
the same order with numpy arrays (`grouped_indices`).
"""

from __future__ import annotations

import functools
from typing import Any


def column_lengths(dataset: Any, column: str) -> Any:
    """The dataset's `column` as one numpy array, or None when it has no such column."""
    if column not in getattr(dataset, "column_names", ()):
        return None
    # one Arrow read of that column alone (indexing gives a lazy per-row Column in datasets 5)
    table = dataset.select_columns([column]).with_format("arrow")[:]
    return table.column(column).to_numpy()


def grouped_indices(lengths: Any, batch_size: int, generator: Any = None) -> Any:
    """transformers' `get_length_grouped_indices` on numpy arrays: the same order for the same
    generator state (a random permutation cut into mega-batches of up to 50 batches, each
    sorted longest first, the longest mega-batch head moved to the front), in 8 bytes an
    index instead of a Python int and list slot (~36 bytes: 180 MB on 5M rows)."""
    import numpy as np
    import torch

    count = len(lengths)
    mult = min(count // (batch_size * 4), 50) or 1
    order = torch.randperm(count, generator=generator).numpy()
    size = mult * batch_size
    parts = []
    for start in range(0, count, size):
        part = order[start : start + size]
        # stable, like sorted(reverse=True): equal lengths keep their drawn order
        parts.append(part[np.argsort(-lengths[part], kind="stable")])
    longest = int(np.argmax([lengths[part[0]] for part in parts]))
    parts[0][0], parts[longest][0] = parts[longest][0], parts[0][0]
    return np.concatenate(parts)


def grouped_sampler_class() -> type:
    """A torch Sampler over `grouped_indices`, drawn again at each epoch like transformers'."""
    from torch.utils.data import Sampler

    class ArrayLengthGroupedSampler(Sampler[int]):
        def __init__(self, batch_size: int, lengths: Any, generator: Any = None) -> None:
            self.batch_size, self.lengths, self.generator = batch_size, lengths, generator

        def __len__(self) -> int:
            return len(self.lengths)

        def __iter__(self) -> Any:
            indices = grouped_indices(self.lengths, self.batch_size, self.generator)
            return (int(i) for i in indices)

    return ArrayLengthGroupedSampler


@functools.cache
def grouped_trainer_class() -> type:
    """`transformers.Trainer` with its samplers fed from the `length` column (defined on first
    use: transformers is imported only then)."""
    import torch
    from transformers import Trainer

    sampler = grouped_sampler_class()

    class LengthGroupedTrainer(Trainer):
        def _grouped_lengths(self, dataset: Any) -> Any:
            if self.args.train_sampling_strategy != "group_by_length":
                return None
            return column_lengths(dataset, self.args.length_column_name)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            lengths = self._grouped_lengths(self.train_dataset)
            if lengths is None:
                return super()._get_train_sampler(train_dataset)
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return sampler(batch, lengths)

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            # the set handed in has lost its `length` column; with as many rows as the
            # Trainer's own evaluation set it is that set, whose column still has them
            same = eval_dataset is not None and self.eval_dataset is not None
            same = same and len(eval_dataset) == len(self.eval_dataset)
            lengths = self._grouped_lengths(self.eval_dataset if same else eval_dataset)
            if lengths is None:
                return super()._get_eval_sampler(eval_dataset)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            generator = torch.Generator().manual_seed(seed)
            return sampler(self.args.eval_batch_size, lengths, generator)

    return LengthGroupedTrainer
