"""Support tickets: a three-class dataset bundle in a plain folder (no package needed).

Load it with `peftlab --plugins-dir examples/folder-bundle ...`, or copy the
folder into ~/.peftlab/plugins/.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from sdk import DatasetContext, DatasetProvider, DatasetSplits


class SupportTickets(DatasetProvider):
    """Rows of data/*.csv as {text, label}, label = index of `topic` in label_names."""

    def load(self, ctx: DatasetContext) -> DatasetSplits:
        from datasets import Dataset

        train = self.read(ctx.bundle_dir / "data" / "train.csv", ctx)
        rng = random.Random(ctx.seed)
        rng.shuffle(train)
        if ctx.params["validation_from_train"]:
            cut = max(1, len(train) // 4)
            train, validation = train[cut:], train[:cut]
        else:
            validation = self.read(ctx.bundle_dir / "data" / "validation.csv", ctx)
        if ctx.params["train_samples"]:
            train = train[: ctx.params["train_samples"]]
        return DatasetSplits(
            train=Dataset.from_list(train),
            validation=Dataset.from_list(validation),
            label_names=list(ctx.label_names),
            task=ctx.task,
            max_length=ctx.params["max_length"],
        )

    @staticmethod
    def read(path: Path, ctx: DatasetContext) -> list[dict[str, object]]:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        unknown = sorted({r[ctx.label_field] for r in rows} - set(ctx.label_names))
        if unknown:
            raise ValueError(f"{path}: unknown topic(s) {unknown}; expected {ctx.label_names}")
        return [
            {"text": r[ctx.text_fields[0]], "label": ctx.label_names.index(r[ctx.label_field])}
            for r in rows
            if r[ctx.text_fields[0]].strip()
        ]
