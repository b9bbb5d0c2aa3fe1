"""Experiment trackers for a training run: the trainer's `report_to` setting, mapped onto
transformers' own TensorBoard and MLflow integrations.

- `none`: nothing beyond the run folder's metrics.jsonl.
- `tensorboard`: event files in `runs/ID/tb/` (`tensorboard --logdir runs` shows every run).
- `mlflow`: a run in an MLflow store. By default the store is a SQLite database in the run
  folder (`runs/ID/mlflow/mlflow.db`, artifacts beside it): MLflow 3 refuses its old
  plain-folder store, and a database is the store it recommends. `tracking_uri` names any
  other store or server instead (`http://host:5000`, `sqlite:///...`).

transformers' callbacks read their settings from environment variables, so
`tracking_arguments` sets those for this (training) process and returns the
`TrainingArguments` keyword arguments. mlflow is imported only when it is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_TO = ("none", "tensorboard", "mlflow")
TENSORBOARD_DIR = "tb"
MLFLOW_DIR = "mlflow"
EXPERIMENT = "peftlab"


@dataclass(frozen=True)
class TrackingSetup:
    """What a run reports to: TrainingArguments kwargs and the environment the callbacks read."""

    arguments: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)
    tracking_uri: str | None = None


def default_mlflow_uri(run_dir: Path) -> str:
    return f"sqlite:///{(Path(run_dir) / MLFLOW_DIR / 'mlflow.db').resolve()}"


def tracking_setup(params: dict[str, Any], run_dir: Path) -> TrackingSetup:
    """The setup for the trainer params `report_to` and `tracking_uri` (pure: nothing is set)."""
    from kernel.errors import ParamError

    choice = str(params.get("report_to") or "none")
    if choice not in REPORT_TO:
        raise ParamError(
            f"must be one of {', '.join(REPORT_TO)}, not '{choice}'", field="trainer.report_to"
        )
    run_dir = Path(run_dir)
    arguments: dict[str, Any] = {"report_to": choice, "run_name": run_dir.name}
    if choice == "tensorboard":
        folder = str((run_dir / TENSORBOARD_DIR).resolve())
        return TrackingSetup(arguments, {"TENSORBOARD_LOGGING_DIR": folder})
    if choice == "mlflow":
        uri = str(params.get("tracking_uri") or "") or default_mlflow_uri(run_dir)
        environment = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT}
        return TrackingSetup(arguments, environment, uri)
    return TrackingSetup(arguments)


def tracking_arguments(params: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """TrainingArguments kwargs for `report_to`, after preparing this process for the tracker."""
    setup = tracking_setup(params, run_dir)
    os.environ.update(setup.environment)
    if setup.tracking_uri:
        _prepare_mlflow(setup.tracking_uri, Path(run_dir), own_store=not params.get("tracking_uri"))
    return setup.arguments


def _prepare_mlflow(uri: str, run_dir: Path, *, own_store: bool) -> None:
    """Point mlflow at the store; in the run's own store, keep the artifacts in the run folder."""
    import mlflow

    # the callback sets the URI only when none is set yet: set it here, so a second run in
    # the same process does not write into the first run's store
    mlflow.set_tracking_uri(uri)
    if not own_store:
        return
    folder = run_dir / MLFLOW_DIR
    folder.mkdir(parents=True, exist_ok=True)
    client = mlflow.tracking.MlflowClient(uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
