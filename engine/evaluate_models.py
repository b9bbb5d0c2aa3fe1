"""The models `engine.evaluate` scores: finished runs rebuilt, one base model per group of
runs whose adapters can sit on it together.

Runs trained on the same base (model bundle and params, task, labels, precision) with
adapters of one peft type are loaded as one `engine.adapters.AdapterSet`: the base is
built once and each run's adapter (and its head) is switched in by name. Every other
run (another base, another adapter type, a technique that saves whole weights) is
rebuilt on its own by `engine.rebuild.load_trained`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engine.adapters import ADAPTER_CONFIG, AdapterError, AdapterSet
from engine.rebuild import load_trained, run_info
from kernel.runs import RunFolder


@dataclass
class LoadedRun:
    """A run's model ready to score, with its tokenizer and adapter/peftlab.json."""

    run: RunFolder
    model: Any
    tokenizer: Any
    info: dict[str, Any]
    #: loaded next to other runs' adapters on one base model
    shared_base: bool = False

    @property
    def task(self) -> str:
        return str(self.info.get("task") or "sequence-classification")


def group_key(run: RunFolder) -> tuple[str, ...]:
    """Runs with equal keys can share one base model (their adapters switch on it)."""
    info = run_info(run)
    record = run.record()
    config_file = run.adapter_dir / ADAPTER_CONFIG
    if not config_file.is_file():  # whole weights or a technique's own format: alone
        return ("alone", run.id)
    peft_type = json.loads(config_file.read_text(encoding="utf-8")).get("peft_type")
    return (
        record.model.id,
        json.dumps(record.model.params, sort_keys=True, default=str),
        str(info.get("task")),
        json.dumps(info.get("label_names")),
        str(record.technique.id == "qlora"),
        str(peft_type),
    )


def run_groups(runs: Sequence[RunFolder]) -> list[list[RunFolder]]:
    """The runs in groups that share a base, in the order the runs were given."""
    groups: dict[tuple[str, ...], list[RunFolder]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return list(groups.values())


def loaded_runs(runs: Sequence[RunFolder]) -> Iterator[LoadedRun]:
    """Each run's model in turn; a group's shared base is freed before the next group loads."""
    for group in run_groups(runs):
        adapters = _adapter_set(group) if len(group) > 1 else None
        if adapters is None:
            for run in group:
                trained = load_trained(run)
                yield LoadedRun(run, trained.model, trained.tokenizer, trained.info)
                del trained
                gc.collect()
            continue
        for run, name in zip(group, adapters.names, strict=True):
            adapters.model.set_adapter(name)
            yield LoadedRun(run, adapters.model, adapters.classifier.tokenizer, run_info(run), True)
        del adapters
        gc.collect()


def _adapter_set(group: list[RunFolder]) -> AdapterSet | None:
    try:
        return AdapterSet(group)
    except AdapterError:  # peft refuses this combination: each run is rebuilt alone
        return None
