"""The Trainer class runs use: length-grouped batches from the `length` column the tokenizer wrote.

transformers 5.24 builds its length-grouped samplers from the training set after removing
the columns the model's forward does not take, `length` among them (and from the
evaluation set without looking at that column); the sampler then measures every example
by reading it (on 1M rows: minutes before the first step and ~170 MB of memory-mapped
pages touched). This Trainer hands the samplers the `length` column instead, read in one
Arrow call; otherwise the samplers are built as transformers builds them.
"""

from __future__ import annotations

import functools
from typing import Any


def column_lengths(dataset: Any, column: str) -> list[int] | None:
    """The dataset's `column` as one list of ints, or None when it has no such column."""
    if column not in getattr(dataset, "column_names", ()):
        return None
    # one Arrow read of that column alone (indexing gives a lazy per-row Column in datasets 5)
    return list(dataset.select_columns([column]).to_dict()[column])


@functools.cache
def grouped_trainer_class() -> type:
    """`transformers.Trainer` with its samplers fed from the `length` column (defined on first
    use: transformers is imported only then)."""
    import torch
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class LengthGroupedTrainer(Trainer):
        def _grouped_lengths(self, dataset: Any) -> list[int] | None:
            if self.args.train_sampling_strategy != "group_by_length":
                return None
            return column_lengths(dataset, self.args.length_column_name)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            lengths = self._grouped_lengths(self.train_dataset)
            if lengths is None:
                return super()._get_train_sampler(train_dataset)
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(batch, lengths=lengths)

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
            return LengthGroupedSampler(
                self.args.eval_batch_size, lengths=lengths, generator=generator
            )

    return LengthGroupedTrainer
