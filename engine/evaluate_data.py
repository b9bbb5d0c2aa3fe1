"""Held-out data for `engine.evaluate`: a file, or a split of a dataset bundle, read into
inputs and references and hashed by content.

The hash covers the task's columns only (inputs and references, in order), so the same
rows give the same hash whether they come from a CSV, a JSONL file or a bundle; a run's
evaluation of them is stored under that hash (`evaluations/<hash>.json`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.plugins import load_plugin
from kernel.errors import PeftlabError
from kernel.runs import RunFolder

CLASSIFICATION = "sequence-classification"
PAIR_COLUMNS = {"causal-lm": ("prompt", "completion"), "seq2seq": ("source", "target")}
SPLITS = ("train", "validation", "test")
HASH_CHARS = 16


class EvaluationError(PeftlabError):
    """Runs or data that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class DataSource:
    """Where held-out rows come from: a `file`, or `split` of the `dataset` bundle record
    (a recipe-style dict: id, path, params; `peftlab evaluate` builds it from a bundle id)."""

    file: Path | None = None
    dataset: dict[str, Any] | None = None
    split: str = "test"
    #: file columns; empty: `text`/`label` (classification) or the task's pair columns
    input_column: str = ""
    reference_column: str = ""
    #: score only the first N rows (0 = all)
    limit: int = 0
    #: seed for a bundle that samples its rows; None: the first run's training seed
    seed: int | None = None

    def describe(self) -> str:
        if self.file is not None:
            return f"file {self.file}"
        return f"dataset {(self.dataset or {}).get('id', '?')} split {self.split}"


@dataclass
class EvalData:
    """Rows of one task: inputs, raw references (labels as given, or reference texts)."""

    task: str
    inputs: list[str]
    references: list[Any]
    description: str
    label_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        rows = [self.task, [str(i) for i in self.inputs], [str(r) for r in self.references]]
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]

    def label_ids(self, label_names: list[str]) -> list[int]:
        """The references as indices into a run's label names (a name or a 0-based index each)."""
        index = {str(name): k for k, name in enumerate(label_names)}
        ids: list[int] = []
        for row, raw in enumerate(self.references):
            text = str(raw).strip()
            if text in index:
                ids.append(index[text])
            elif text.lstrip("-").isdigit() and 0 <= int(text) < len(label_names):
                ids.append(int(text))
            else:
                raise EvaluationError(
                    f"{self.description}: row {row + 1} has label {raw!r}, which is neither one of "
                    f"the run's labels ({', '.join(map(str, label_names))}) nor an index into them"
                )
        return ids


def load_eval_data(source: DataSource, task: str, run: RunFolder) -> EvalData:
    """The rows of `source` for a run of `task` (the run supplies the bundle's snapshot)."""
    from sdk.data import DataError

    try:
        data = (
            _from_file(source, task) if source.file is not None else _from_bundle(source, task, run)
        )
    except DataError as exc:  # it names the file when it has one
        where = "" if getattr(exc, "path", None) else f"{source.describe()}: "
        raise EvaluationError(f"{where}{exc}") from None
    if not data.inputs:
        raise EvaluationError(f"{source.describe()}: no rows to evaluate")
    if source.limit and source.limit < len(data.inputs):
        data.inputs, data.references = data.inputs[: source.limit], data.references[: source.limit]
        data.notes.append(f"scored the first {source.limit} rows")
    return data


def _columns(source: DataSource, task: str) -> tuple[str, str]:
    default = ("text", "label") if task == CLASSIFICATION else PAIR_COLUMNS[task]
    return source.input_column or default[0], source.reference_column or default[1]


def _from_file(source: DataSource, task: str) -> EvalData:
    from sdk.data import encode_labels, read_table, to_classification, to_text_pairs

    assert source.file is not None
    path = Path(source.file).expanduser()
    table = read_table(path)
    inputs, references = _columns(source, task)
    if task == CLASSIFICATION:
        rows = to_classification(table, inputs, references, path=path)
        (encoded,), names = encode_labels([rows])  # empty rows dropped, text stripped
        labels = [names[code] for code in encoded["label"]]
        return EvalData(task, list(encoded["text"]), labels, source.describe(), notes=rows.notes)
    pairs = to_text_pairs(table, inputs, references, path=path)
    kept = pairs.dataset
    return EvalData(
        task, list(kept["input"]), list(kept["output"]), source.describe(), notes=pairs.notes
    )


def _run_seed(run: RunFolder) -> int:
    return int(run.record().trainer.params.get("seed", 42))


def _from_bundle(source: DataSource, task: str, run: RunFolder) -> EvalData:
    from sdk.context import DatasetContext

    if source.split not in SPLITS:
        raise EvaluationError(f"unknown split '{source.split}'; choose one of {', '.join(SPLITS)}")
    record = dict(source.dataset or {})
    handle = load_plugin("dataset", record, run.path if record.get("snapshot") else None)
    section = handle.manifest.get("dataset") or {}
    pair = PAIR_COLUMNS.get(task, ("text", "label"))
    splits = handle.instance.load(
        DatasetContext(
            params=dict(handle.params),
            bundle_dir=Path(handle.bundle_dir),
            task=task,
            label_names=list(section.get("label_names") or []),
            text_fields=list(section.get("text_fields") or [pair[0]]),
            label_field=section.get("label_field", pair[1]),
            seed=source.seed if source.seed is not None else _run_seed(run),
        )
    )
    rows = getattr(splits, source.split)
    if rows is None:
        raise EvaluationError(f"dataset '{handle.id}' has no {source.split} split")
    inputs, references = ("text", "label") if task == CLASSIFICATION else pair
    names = list(splits.label_names) if task == CLASSIFICATION else []
    return EvalData(
        task,
        [str(t) for t in rows[inputs]],
        list(rows[references]),
        source.describe(),
        label_names=names,
        notes=list(splits.notes),
    )
