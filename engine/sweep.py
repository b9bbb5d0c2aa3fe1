"""Sweeps: Optuna searches a recipe's params, every trial an ordinary run in the sweep folder.

<sweep folder>/
  sweep.yaml        what was asked (recipe, --search, sampler, trials, metric): resume reads it
  study.db          the Optuna study (SQLite): a killed sweep resumes to the same trials
  runs/<run id>/    one ordinary run per trial (recipe.yaml, adapter/, results.json,
                    trial.json naming its trial, pruned.json when the pruner stopped it)
  report.md, trials.csv, best.json, best-recipe.yaml, importance.json, *.png, *.html
                    (engine.sweep_report)
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from engine.prepare import prepare_checked, resolve_checked
from engine.space import SearchSpace, as_sets, bind
from kernel.errors import PeftlabError, RunError
from kernel.recipe import Recipe
from kernel.runs import RunFolder, atomic_write_text

SETTINGS_FILE = "sweep.yaml"
STUDY_FILE = "study.db"
LOCK_FILE = "sweep.lock"
#: the open lock file of each sweep this process runs (an flock lives as long as its file)
_LOCKS: dict[Path, Any] = {}
STUDY_NAME = "sweep"


class SweepSettings(BaseModel):
    """What a sweep was asked to do; stored as sweep.yaml so a resumed sweep does the same."""

    model_config = ConfigDict(extra="forbid")

    name: str = "sweep"
    recipe: Recipe
    search: list[str]
    sampler: Literal["grid", "random", "tpe"] = "tpe"
    trials: int | None = Field(default=None, ge=1, description="None: the grid's size")
    metric: str = "accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    prune: bool = False
    prune_startup_trials: int = Field(default=2, ge=0)
    seed: int = 42
    parallel: int = Field(default=1, ge=1)
    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    cpus_per_trial: float = Field(default=1.0, gt=0)
    gpus_per_trial: float = Field(default=0.0, ge=0)
    storage: str | None = Field(default=None, description="Optuna storage URL; None: study.db")

    def target(self, space: SearchSpace) -> int:
        return self.trials or (space.grid_size() if self.sampler == "grid" else 10)


class Launcher(Protocol):
    """Trains a prepared run folder to its end (local processes or Ray tasks)."""

    def run(self, run: RunFolder) -> int: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...


class TrialFailed(Exception):
    """A trial whose run failed: recorded as FAIL, the sweep goes on."""


class SweepInterrupted(Exception):
    """The sweep was stopped; the trial in flight is run again on resume."""


@dataclass
class SweepFolder:
    path: Path

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def storage_url(self) -> str:
        stored = self.settings().storage if (self.path / SETTINGS_FILE).exists() else None
        return stored or f"sqlite:///{(self.path / STUDY_FILE).resolve()}"

    def settings(self) -> SweepSettings:
        try:
            data = yaml.safe_load((self.path / SETTINGS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"not a sweep folder (no {SETTINGS_FILE})", path=self.path) from None
        return SweepSettings.model_validate(data)

    def write_settings(self, settings: SweepSettings) -> None:
        text = yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
        atomic_write_text(self.path / SETTINGS_FILE, text)

    def lock(self) -> None:
        """Refuse a second process on the same sweep. The lock is an flock held for the
        life of this process, so a killed sweep leaves no lock behind to take over."""
        handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunError(f"this sweep is running in process {holder}", path=self.path) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _LOCKS[self.path] = handle

    def unlock(self) -> None:
        handle = _LOCKS.pop(self.path, None)
        if handle is not None:
            handle.close()  # closing releases the flock


def create_folder(path: Path, settings: SweepSettings) -> SweepFolder:
    """A new sweep folder; an existing sweep is continued with `resume`, not overwritten."""
    if (path / SETTINGS_FILE).exists():
        raise RunError("a sweep already lives here; continue it with --resume", path=path)
    path.mkdir(parents=True, exist_ok=True)
    folder = SweepFolder(path)
    folder.write_settings(settings)
    return folder


def open_study(folder: SweepFolder, settings: SweepSettings, space: SearchSpace) -> Any:
    """The sweep's study in its SQLite storage, created on first use; sampler and pruner attached."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep prints its own lines
    storage = optuna.storages.RDBStorage(
        folder.storage_url, engine_kwargs={"connect_args": {"timeout": 60}}
    )
    known = len(storage.get_all_studies()) and storage.get_n_trials(
        storage.get_study_id_from_name(STUDY_NAME)
    )
    # a resumed session draws new values, not the first session's again
    seed = settings.seed + int(known or 0)
    samplers: dict[str, Callable[[], Any]] = {
        # the grid's seed orders its points: it must not change between sessions
        "grid": lambda: optuna.samplers.GridSampler(space.grid(), seed=settings.seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
    }
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup_trials)
        if settings.prune
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        load_if_exists=True,
        sampler=samplers[settings.sampler](),
        pruner=pruner,
        direction=settings.direction,
    )


def recover(study: Any) -> int:
    """Trials a killed or interrupted session left unfinished: failed, and queued again with
    the same values; returns how many were queued."""
    from optuna.trial import TrialState, create_trial

    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    queued = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:  # the lock says no other process runs it
            study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        elif not (trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted")):
            continue
        if trial.number not in retried and trial.params:
            # as optuna's RetryFailedTrialCallback does: the copy keeps the sampler's own
            # attributes (GridSampler's grid point), fixed_params gives back the same values
            system = {**trial.system_attrs, "fixed_params": trial.params}
            study.add_trial(
                create_trial(
                    state=TrialState.WAITING,
                    params=trial.params,
                    distributions=trial.distributions,
                    user_attrs={"retry_of": trial.number},
                    system_attrs=system,
                )
            )
            queued += 1
    return queued


def finished_count(study: Any) -> int:
    """Trials that count towards the target: completed, pruned, or failed on their own."""
    from optuna.trial import TrialState

    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
    )


@dataclass
class TrialRunner:
    """Optuna's objective: one trial = one ordinary run of the base recipe with the trial's values."""

    kernel: Any
    folder: SweepFolder
    settings: SweepSettings
    space: SearchSpace
    launcher: Launcher
    say: Callable[[str], None] = print
    stopping: threading.Event = field(default_factory=threading.Event)

    def __call__(self, trial: Any) -> float:
        from sdk.trial import TrialInfo, pruned_at, write_trial

        if self.stopping.is_set():
            trial.set_user_attr("interrupted", True)  # not counted: nothing ran
            raise SweepInterrupted()
        values = self.space.suggest(trial)
        shown = " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        run = self._prepare(trial, values)
        trial.set_user_attr("run_id", run.id)
        info = TrialInfo(
            storage=self.folder.storage_url,
            study=STUDY_NAME,
            trial_id=trial._trial_id,
            number=trial.number,
            metric=self.settings.metric,
            prune=self.settings.prune,
            prune_startup_trials=self.settings.prune_startup_trials,
        )
        write_trial(run.path, info)
        self.say(f"trial {trial.number} started: {shown}  (run {run.id})")
        self.launcher.run(run)
        status = run.status()
        if status.get("state") != "completed":
            if self.stopping.is_set():
                trial.set_user_attr("interrupted", True)
                raise SweepInterrupted()
            self.say(f"trial {trial.number} failed: {status.get('error', 'no result')}")
            raise TrialFailed(status.get("error") or "the run did not complete")
        value = (run.results() or {}).get(self.settings.metric)
        if value is None:
            raise TrialFailed(f"the run's results have no '{self.settings.metric}'")
        trial.set_user_attr("value", float(value))
        stop = pruned_at(run.path)
        if stop is not None:
            self.say(f"trial {trial.number} pruned at step {stop['step']}: {shown}")
            import optuna

            raise optuna.TrialPruned()
        self.say(f"trial {trial.number} done: {shown} -> {self.settings.metric} {value:.4f}")
        return float(value)

    def stop(self) -> None:
        """Stop the sweep: no new trial starts, the running ones are interrupted."""
        self.stopping.set()
        self.launcher.stop()

    def _prepare(self, trial: Any, values: dict[str, Any]) -> RunFolder:
        recipe = self.settings.recipe.with_overrides({}, as_sets(values))
        recipe = recipe.model_copy(update={"name": f"{self.settings.name}-t{trial.number:03d}"})
        try:
            return prepare_checked(recipe, self.kernel, self.folder.runs_dir)
        except PeftlabError as exc:  # this trial's values: the next trial may fit
            self.say(f"trial {trial.number} refused: {exc}")
            raise TrialFailed(str(exc)) from None


def check(kernel: Any, settings: SweepSettings) -> SearchSpace:
    """The bounded search space, and the base recipe resolved and past the pre-flight checks:
    refused before a sweep folder or a trial exists."""
    space = bind(settings.search, settings.recipe, kernel.snapshot)
    resolve_checked(settings.recipe, kernel)
    if settings.sampler == "grid":
        space.grid()  # ranges refused
    return space


def make_launcher(settings: SweepSettings) -> Launcher:
    if settings.backend == "ray":
        from engine.sweep_ray import RayLauncher

        return RayLauncher(settings.address, settings.cpus_per_trial, settings.gpus_per_trial)
    from engine.sweep_launch import LocalLauncher

    return LocalLauncher(settings.parallel)


def run_sweep(
    kernel: Any,
    folder: SweepFolder,
    launcher: Launcher | None = None,
    say: Callable[[str], None] = print,
    on_runner: Callable[[TrialRunner], None] | None = None,
) -> Any:
    """Run (or continue) the sweep in `folder` until its target trial count; returns the study."""
    settings = folder.settings()
    space = check(kernel, settings)
    folder.lock()
    launcher = launcher or make_launcher(settings)
    try:
        study = open_study(folder, settings, space)
        queued = recover(study)
        if queued:
            say(f"resuming: {queued} unfinished trial(s) run again with the same values")
        target = settings.target(space)
        remaining = target - finished_count(study)
        runner = TrialRunner(kernel, folder, settings, space, launcher, say)
        if on_runner is not None:
            on_runner(runner)
        if remaining > 0:
            say(
                f"sweep {settings.name}: {remaining} of {target} trial(s) to run, {launcher.describe()}"
            )
            started = time.time()
            study.optimize(
                runner,
                n_trials=remaining,
                n_jobs=settings.parallel,
                catch=(TrialFailed,),
            )
            study.set_user_attr(f"wall_s_{int(started)}", time.time() - started)
        return study
    finally:
        launcher.close()
        folder.unlock()
