"""Plugin code that is wrong or fails: the run is marked failed, says why, and harms no other run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.process import start_run
from engine.runner import main as runner_main
from kernel.jobs import prepare_run
from kernel.recipe import resolve
from tests.reliability.builders import kernel_for, technique_bundle, tiny_recipe

WRONG_ENTRIES = [
    (
        "a model provider",
        "from sdk import ModelProvider\n\n\nclass T(ModelProvider):\n"
        "    def load(self, ctx):\n        raise AssertionError('must not be called')\n",
        "entry 'technique:T' is T, not a subclass of sdk.Technique",
    ),
    (
        "a plain function",
        "def T(model, ctx):\n    return model\n",
        "entry 'technique:T' is function, not a subclass of sdk.Technique",
    ),
    (
        "an unrelated class",
        "class T:\n    def apply(self, model, ctx):\n        return model\n",
        "entry 'technique:T' is T, not a subclass of sdk.Technique",
    ),
]


@pytest.mark.parametrize(
    ("case", "module", "message"), WRONG_ENTRIES, ids=[c[0] for c in WRONG_ENTRIES]
)
def test_entry_of_the_wrong_kind_fails_the_run_when_it_starts(
    tmp_path: Path, tiny_models, tiny_csv_dir, case: str, module: str, message: str
) -> None:
    folder = technique_bundle(tmp_path / "plugins", "wrong", module)
    kernel = kernel_for(tmp_path / "plugins")
    # discovery reads manifests only: the bundle is listed and a recipe with it resolves
    assert "wrong" in kernel.snapshot.ids("technique")
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir, technique="wrong")
    run = prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), tmp_path / "runs")

    assert runner_main([str(run.path)]) == 1
    status = run.status()
    assert status["state"] == "failed"
    assert status["error"].startswith("PluginLoadError: ")
    assert message in status["error"]
    assert status["error_detail"]["path"] == str(folder / "plugin.yaml")
    assert status["error_detail"]["field"] == "entry"
    assert run.results() is None and not run.adapter_dir.exists()


RAISING_TECHNIQUE = """from sdk import Technique


class T(Technique):
    def apply(self, model, ctx):
        raise RuntimeError("boom in apply")
"""


def wait_all(processes: list, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for process in processes:
        codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
    return codes


def test_a_raising_plugin_fails_its_run_and_a_parallel_run_completes(
    tmp_path: Path, tiny_models, tiny_csv_dir
) -> None:
    folder = technique_bundle(tmp_path / "plugins", "boom", RAISING_TECHNIQUE)
    kernel = kernel_for(tmp_path / "plugins")
    runs_dir = tmp_path / "runs"
    bad = prepare_run(
        resolve(
            tiny_recipe(tiny_models["bert"], tiny_csv_dir, technique="boom", name="same"),
            kernel.snapshot,
            kernel.graph(),
        ),
        runs_dir,
    )
    good = prepare_run(
        resolve(
            tiny_recipe(tiny_models["bert"], tiny_csv_dir, technique="lora", name="same"),
            kernel.snapshot,
            kernel.graph(),
        ),
        runs_dir,
    )
    assert bad.path != good.path  # same name, same second: still two folders

    processes = [start_run(bad), start_run(good)]
    bad_code, good_code = wait_all(processes, timeout=240)

    assert bad_code != 0
    status = bad.status()
    assert status["state"] == "failed", status
    assert status["error"] == "RuntimeError: boom in apply"
    # the traceback points at the plugin's own line, in the copy of the bundle the run used
    assert str(bad.path / "bundles" / "technique" / "technique.py") in status["traceback"]
    assert (bad.path / "bundles" / "technique" / "technique.py").read_bytes() == (
        folder / "technique.py"
    ).read_bytes()
    assert 'raise RuntimeError("boom in apply")' in status["traceback"]
    assert bad.results() is None
    assert "boom in apply" in bad.log_file.read_text(encoding="utf-8")

    assert good_code == 0, good.log_file.read_text(encoding="utf-8")[-3000:]
    assert good.status()["state"] == "completed"
    assert good.results()["global_step"] == 2
    assert (good.adapter_dir / "adapter_model.safetensors").is_file()
