"""report_to: a tiny run's TensorBoard event files and MLflow run, read back with the real
tensorboard and mlflow APIs."""

from __future__ import annotations

import os

import pytest

from kernel.errors import ParamError
from sdk.tracking import default_mlflow_uri, tracking_setup
from tests.engine.test_evaluate import train_run

TRACKER_ENV = ("TENSORBOARD_LOGGING_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture
def clean_env():
    """The training process sets the trackers' variables; a test must not leave them behind."""
    saved = {key: os.environ.get(key) for key in TRACKER_ENV}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_setup_maps_each_choice(tmp_path):
    assert tracking_setup({}, tmp_path).arguments["report_to"] == "none"
    tb = tracking_setup({"report_to": "tensorboard"}, tmp_path)
    assert tb.environment == {"TENSORBOARD_LOGGING_DIR": str((tmp_path / "tb").resolve())}
    ml = tracking_setup({"report_to": "mlflow"}, tmp_path)
    assert ml.tracking_uri == default_mlflow_uri(tmp_path)
    given = tracking_setup({"report_to": "mlflow", "tracking_uri": "http://host:5000"}, tmp_path)
    assert given.environment["MLFLOW_TRACKING_URI"] == "http://host:5000"
    with pytest.raises(ParamError, match="must be one of none, tensorboard, mlflow"):
        tracking_setup({"report_to": "wandb"}, tmp_path)


def test_tensorboard_event_files_in_the_run_folder(kernel, tmp_path, tiny_models, tiny_csv_dir, clean_env):  # fmt: skip
    pytest.importorskip("tensorboard", reason="the tracking extra: pip install peftlab[tracking]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, "lora",
                    {"report_to": "tensorboard"})  # fmt: skip
    events = list((run.path / "tb").glob("events.out.tfevents.*"))
    assert events, list(run.path.iterdir())
    accumulator = EventAccumulator(str(run.path / "tb"))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train/loss" in scalars and "eval/accuracy" in scalars
    losses = [e.value for e in accumulator.Scalars("train/loss")]
    logged = [r["loss"] for r in run.metrics() if "loss" in r]
    assert losses == pytest.approx(logged, rel=1e-4)


def test_mlflow_run_in_the_run_folder(kernel, tmp_path, tiny_models, tiny_csv_dir, clean_env):
    pytest.importorskip("mlflow", reason="the tracking extra: pip install peftlab[tracking]")
    from mlflow.tracking import MlflowClient

    run = train_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, "lora",
                    {"report_to": "mlflow"})  # fmt: skip
    client = MlflowClient(default_mlflow_uri(run.path))
    experiment = client.get_experiment_by_name("peftlab")
    assert experiment.artifact_location.startswith((run.path / "mlflow").resolve().as_uri())
    found = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in found] == [run.id]
    assert found[0].info.status == "FINISHED"
    history = client.get_metric_history(found[0].info.run_id, "eval_accuracy")
    assert history[-1].value == pytest.approx(run.results()["accuracy"])
