"""Sweep trials: a Trainer callback that reports each evaluation to the sweep's Optuna study.

A run started by a sweep holds `trial.json` (the study's storage, the trial, the metric);
a trainer plugin adds `trial_callbacks(ctx.run_dir)` to its Trainer's callbacks. The
callback reports the metric at every evaluation and, when the study's pruner says so,
stops training and leaves `pruned.json` in the run folder. Outside a sweep the list is
empty and neither optuna nor transformers is imported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TRIAL_FILE = "trial.json"
PRUNED_FILE = "pruned.json"


@dataclass(frozen=True)
class TrialInfo:
    """Which Optuna trial a run is, and what it reports."""

    storage: str
    study: str
    trial_id: int
    number: int
    metric: str
    prune: bool = False
    #: the study's MedianPruner lets this many trials finish before it prunes any
    prune_startup_trials: int = 2

    @property
    def eval_key(self) -> str:
        """The key of the metric in the Trainer's evaluation output (`eval_accuracy`)."""
        return self.metric if self.metric.startswith("eval_") else f"eval_{self.metric}"


def write_trial(run_dir: Path, info: TrialInfo) -> None:
    (Path(run_dir) / TRIAL_FILE).write_text(json.dumps(asdict(info), indent=2) + "\n")


def read_trial(run_dir: Path) -> TrialInfo | None:
    try:
        return TrialInfo(**json.loads((Path(run_dir) / TRIAL_FILE).read_text()))
    except FileNotFoundError:
        return None


def pruned_at(run_dir: Path) -> dict[str, Any] | None:
    """What the pruner stopped the run on ({step, value}), or None if it ran to the end."""
    try:
        return json.loads((Path(run_dir) / PRUNED_FILE).read_text())
    except FileNotFoundError:
        return None


def trial_callbacks(run_dir: Path) -> list[Any]:
    """[the trial reporter] for a run that is a sweep trial, [] for any other run."""
    info = read_trial(run_dir)
    return [] if info is None else [_reporter_class()(info, Path(run_dir))]


def _reporter_class() -> type:
    from transformers import TrainerCallback

    class TrialReporter(TrainerCallback):
        """Reports each evaluation to the trial; stops training when the pruner says so."""

        def __init__(self, info: TrialInfo, run_dir: Path) -> None:
            self.info = info
            self.run_dir = run_dir
            self._trial: Any = None

        def trial(self) -> Any:
            if self._trial is None:
                import optuna

                # the pruner is not stored with the study: this process builds the sweep's own
                pruner = optuna.pruners.MedianPruner(
                    n_startup_trials=self.info.prune_startup_trials
                )
                study = optuna.load_study(
                    study_name=self.info.study, storage=self.info.storage, pruner=pruner
                )
                self._trial = optuna.trial.Trial(study, self.info.trial_id)
            return self._trial

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            value = (kwargs.get("metrics") or {}).get(self.info.eval_key)
            if value is None or not state.is_world_process_zero:
                return
            trial = self.trial()
            trial.report(float(value), state.global_step)
            if self.info.prune and trial.should_prune():
                marker = {"step": state.global_step, "value": float(value)}
                (self.run_dir / PRUNED_FILE).write_text(json.dumps(marker) + "\n")
                control.should_training_stop = True

    return TrialReporter
