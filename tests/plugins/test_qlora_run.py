"""QLoRA through the engine on the CPU, with the trainer's defaults (before-training
evaluation on, evaluation each epoch): the run completes and is evaluated at the end."""

from __future__ import annotations

from pathlib import Path

from engine.runner import main as run_main
from kernel import Kernel, KernelConfig
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from tests.conftest import save_quantizable_bert


def test_qlora_trains_over_two_epochs_with_default_evaluation(
    tmp_path: Path, tiny_csv_dir: Path
) -> None:
    # bitsandbytes quantizes in blocks of 64 values: a little wider than the shared tiny models
    model_dir = save_quantizable_bert(tmp_path / "bert64")
    kernel = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=tmp_path / "x")
    )
    kernel.discover()
    recipe = Recipe(
        name="qlora-epochs",
        dataset=PluginChoice(
            id="rotten_tomatoes", params={"path": str(tiny_csv_dir), "max_length": 32}
        ),
        model=PluginChoice(id="bert", params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id="qlora", params={"r": 4}),
        trainer=PluginChoice(id="hf_trainer", params={"epochs": 2, "batch_size": 8}),
    )
    run = prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), tmp_path / "runs")
    assert run_main([str(run.path)]) == 0, (run.path / "status.json").read_text()
    results = run.results()
    assert results["global_step"] == 4  # 16 rows / batch 8 x 2 epochs
    assert 0.0 <= results["accuracy"] <= 1.0
