"""Run preparation: bundles are snapshotted into the run, and the runner trains with that copy."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.runner import main as runner_main
from kernel.jobs import prepare_run
from kernel.recipe import Recipe, resolve
from kernel.runs import RunFolder
from tests.kernel.bundles import technique_manifest, write_bundle

TRAINER_MODULE = """from sdk import TrainerPlugin


class Echo(TrainerPlugin):
    def run(self, ctx):
        return {"technique_value": type(ctx.technique.instance).value,
                "technique_dir": str(ctx.technique.bundle_dir)}
"""
PROVIDER_MODULE = """from sdk import {base}


class Echo({base}):
    def load(self, ctx):
        raise NotImplementedError
"""
TECHNIQUE_MODULE = """from sdk import Technique


class Echo(Technique):
    value = {value}

    def apply(self, model, ctx):
        return model
"""


def _bundles(root: Path) -> None:
    write_bundle(root, "tech", technique_manifest("tech"), TECHNIQUE_MODULE.replace("{value}", "1"))
    model = {
        "id": "m",
        "kind": "model",
        "name": "M",
        "version": "1",
        "api": 1,
        "entry": "technique:Echo",
        "model": {"architecture": "bert", "tasks": ["sequence-classification"]},
    }
    data = {
        "id": "d",
        "kind": "dataset",
        "name": "D",
        "version": "1",
        "api": 1,
        "entry": "technique:Echo",
        "dataset": {"task": "sequence-classification"},
    }
    trainer = {
        "id": "t",
        "kind": "trainer",
        "name": "T",
        "version": "1",
        "api": 1,
        "entry": "technique:Echo",
    }
    write_bundle(root, "m", model, PROVIDER_MODULE.format(base="ModelProvider"))
    write_bundle(root, "d", data, PROVIDER_MODULE.format(base="DatasetProvider"))
    write_bundle(root, "t", trainer, TRAINER_MODULE)


def test_a_run_trains_with_the_version_it_was_started_with(make_kernel, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    _bundles(plugins)
    kernel = make_kernel(plugins)
    recipe = Recipe.model_validate(
        {
            "name": "snap",
            "dataset": {"id": "d"},
            "model": {"id": "m"},
            "technique": {"id": "tech"},
            "trainer": {"id": "t"},
        }
    )
    run = prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), tmp_path / "runs")
    record = yaml.safe_load(run.recipe_file.read_text())
    assert record["technique"]["snapshot"] == "bundles/technique"
    assert (run.path / "bundles" / "technique" / "technique.py").is_file()
    # the plugin folder is edited after the run was prepared
    (plugins / "tech" / "technique.py").write_text(TECHNIQUE_MODULE.replace("{value}", "2"))
    assert runner_main([str(run.path)]) == 0
    results = RunFolder(run.path).results()
    assert results["technique_value"] == 1
    assert results["technique_dir"] == str(run.path / "bundles" / "technique")
    assert RunFolder(run.path).status()["state"] == "completed"
