"""Score finished runs on held-out data: a file, or a split of a dataset bundle.

`evaluate_runs(runs, DataSource(...), EvaluateOptions(...))` is the entry point
for the command line (`peftlab evaluate`), the app and the Python API. It loads
the data once per task, rebuilds the runs' models in one process (runs that share
a base model load it once and switch adapters: `engine.evaluate_models`), scores
each run, writes each result to `RUN/evaluations/<data-hash>.json` (atomically)
and returns them as typed `RunEvaluation` records (`engine.evaluate_results`),
in the order the runs were given. `read_evaluations(run)` reads them back.

What is scored:

- classification: accuracy with its standard error and a 95 % bootstrap
  interval, macro-F1, per-class precision/recall/F1, the confusion matrix,
  expected calibration error, samples/s and single-row latency, and the N
  most confidently wrong rows;
- generation (causal-lm, seq2seq): ROUGE-1/2/L, BERTScore P/R/F1 (the
  scorer's model and layer are recorded in `scorer`: values compare only
  under the same scorer), perplexity of the references, exact match, each
  with intervals where they are per-row means, and every output beside its
  reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.evaluate_data import (
    CLASSIFICATION,
    DataSource,
    EvalData,
    EvaluationError,
    load_eval_data,
)
from engine.evaluate_models import loaded_runs
from engine.evaluate_results import (
    RunEvaluation,
    find_evaluation,
    read_evaluations,
    write_evaluation,
)
from engine.evaluate_tasks import EvaluateOptions, score_classification, score_generation
from engine.rebuild import as_run, quiet_loading, run_task
from kernel.runs import RunFolder

__all__ = [
    "DataSource",
    "EvaluateOptions",
    "EvaluationError",
    "RunEvaluation",
    "evaluate_runs",
    "find_evaluation",
    "read_evaluations",
]


def evaluate_runs(
    runs: Sequence[RunFolder | Path | str],
    source: DataSource,
    options: EvaluateOptions | None = None,
    *,
    write: bool = True,
    on_result: Callable[[RunEvaluation], None] | None = None,
) -> list[RunEvaluation]:
    """Score every run on the rows of `source`; see the module docstring."""
    options = options or EvaluateOptions()
    folders = [as_run(r) for r in runs]
    if not folders:
        raise EvaluationError("no runs given")
    if len({f.path.resolve() for f in folders}) != len(folders):
        raise EvaluationError("the same run is given twice")
    tasks = {f.id: run_task(f) for f in folders}  # refuses unfinished runs before any loading
    data = _data_by_task(source, folders, tasks)
    scorer = _scorer(options) if any(t != CLASSIFICATION for t in tasks.values()) else None
    found: dict[str, RunEvaluation] = {}
    _quiet_datasets()
    with quiet_loading():
        for loaded in loaded_runs(folders):
            rows = data[loaded.task]
            if loaded.task == CLASSIFICATION:
                evaluation = score_classification(loaded, rows, options)
            else:
                evaluation = score_generation(loaded, rows, options, scorer)
            if write:
                write_evaluation(loaded.run, evaluation)
            if on_result is not None:
                on_result(evaluation)
            found[loaded.run.id] = evaluation
    return [found[f.id] for f in folders]


def _data_by_task(
    source: DataSource, runs: list[RunFolder], tasks: dict[str, str]
) -> dict[str, EvalData]:
    data: dict[str, EvalData] = {}
    for run in runs:
        task = tasks[run.id]
        if task not in data:
            data[task] = load_eval_data(source, task, run)
    return data


def _scorer(options: EvaluateOptions) -> Any:  # an sdk.scoring.BertScorer or None
    if not options.bertscore:
        return None
    from sdk.scoring import BertScorer

    try:
        return BertScorer(options.bertscore_model, options.bertscore_layer)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"BERTScore scorer '{options.bertscore_model}': {exc}") from None


def _quiet_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()
