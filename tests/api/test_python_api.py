"""`import peftlab`: train, follow, read results and metrics, predict, export, compare, from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

import peftlab
from tests.reliability.builders import cli_env, tiny_recipe

FAST = {"trainer.max_steps": 2, "trainer.logging_steps": 1, "trainer.measure_baseline": False}


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in cli_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    peftlab.configure(runs_dir=tmp_path / "runs", use_entry_points=False)
    yield tmp_path
    peftlab.configure()


def test_plugins_and_graph_describe_what_is_installed(session: Path) -> None:
    techniques = {p.id for p in peftlab.plugins(kind="technique")}
    assert {"lora", "ia3", "full"} <= techniques
    lora = next(p for p in peftlab.plugins("technique") if p.id == "lora")
    assert lora.params["r"]["type"] == "int"
    reasons = peftlab.graph().check({"dataset": "summaries", "model": "minilm"})
    assert reasons and "does not support task" in reasons[0]


def test_train_blocks_and_gives_results_metrics_and_predictions(
    session: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir)
    run = peftlab.train(recipe, r=4, params=FAST, progress=False)
    assert run.state == "completed", run.error
    assert run.record.technique.params["r"] == 4  # the bare keyword reached the technique
    assert 0.0 <= run.results["accuracy"] <= 1.0
    assert {"step", "loss"} <= set(run.metrics.columns)
    (prediction,) = run.predict("a lovely film")
    labels = run.load().info["label_names"]
    assert set(prediction.probabilities) == set(labels) and prediction.label in labels
    assert abs(sum(prediction.probabilities.values()) - 1.0) < 1e-5
    (scored,) = peftlab.evaluate(run, tiny_csv_dir / "test.csv")
    assert scored.run_id == run.id and scored.metrics["examples"] == 4
    low, high = scored.metrics["accuracy_low"], scored.metrics["accuracy_high"]
    assert 0.0 <= low <= scored.metrics["accuracy"] <= high <= 1.0
    assert any((run.path / "evaluations").glob("*.json"))
    exported = run.export(session / "adapter")
    assert (exported / "adapter_config.json").is_file()
    assert [r.id for r in peftlab.runs()] == [run.id]
    assert peftlab.run(run.id[:12]).results == run.results


def test_a_bare_param_must_name_exactly_one_plugin(session: Path) -> None:
    with pytest.raises(peftlab.ParamError, match="no chosen plugin declares it"):
        peftlab.train(no_such_param=1, progress=False)
    assert not (session / "runs").exists() or not any((session / "runs").iterdir())


def test_an_unknown_technique_is_the_kernels_error(session: Path) -> None:
    with pytest.raises(peftlab.PeftlabError, match="no_such_technique"):
        peftlab.train(technique="no_such_technique", progress=False)


def test_compare_refuses_a_technique_before_anything_trains(
    session: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir)
    with pytest.raises(peftlab.PeftlabError, match="no_such_technique"):
        peftlab.compare(["lora", "no_such_technique"], recipe, params=FAST, progress=False)
    assert not (session / "runs").exists() or not any((session / "runs").iterdir())


def test_train_without_waiting_returns_a_handle_that_can_be_cancelled(
    session: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir)
    run = peftlab.train(recipe, params={"trainer.max_steps": 100000}, wait=False)
    assert run.state in ("pending", "running")
    run.cancel()
    assert run.state == "interrupted"
    with pytest.raises(peftlab.RunError, match="not completed"):
        run.predict("anything")


def test_compare_trains_each_technique_on_the_same_settings(
    session: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir)
    runs = peftlab.compare(["lora", "ia3"], recipe, params=FAST, progress=False)
    assert [r.record.technique.id for r in runs] == ["lora", "ia3"]
    assert all(r.state == "completed" for r in runs)
    assert {r.record.trainer.params["max_steps"] for r in runs} == {2}
