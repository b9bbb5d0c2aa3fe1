"""engine.imports: a training process leaves bitsandbytes unloaded unless its run may quantize."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from engine.imports import QUANTIZER, explain_held_back, run_may_quantize
from tests.plugins.test_hf_trainer import make_run

ROOT = Path(__file__).resolve().parents[2]


def test_a_lora_run_on_a_plain_local_model_cannot_quantize(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir)
    assert run_may_quantize(run) is False


def test_a_technique_that_requires_a_quantizable_model_may(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, technique="qlora")
    assert run_may_quantize(run) is True


def test_a_bundle_listing_bitsandbytes_among_its_packages_may(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir)
    manifest = run.path / "bundles" / "technique" / "plugin.yaml"
    text = manifest.read_text()
    assert "packages:" in text
    manifest.write_text(text.replace("packages: [", 'packages: ["bitsandbytes>=0.45", ', 1))
    assert run_may_quantize(run) is True


def test_a_checkpoint_saved_quantized_may(kernel, tmp_path, tiny_models, tiny_csv_dir):
    folder = shutil.copytree(tiny_models["bert"], tmp_path / "quantized-bert")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (folder / "config.json").write_text(json.dumps(config))
    run = make_run(kernel, tmp_path / "runs", folder, tiny_csv_dir)
    assert run_may_quantize(run) is True


def test_a_hub_model_missing_from_the_local_cache_may(
    kernel, tmp_path, tiny_models, tiny_csv_dir, monkeypatch
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir)
    recipe = run.path / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace(str(tiny_models["bert"]), "someone/some-model"))
    assert run.recipe()["model"]["params"]["name_or_path"] == "someone/some-model"
    assert run_may_quantize(run) is True


def test_a_failure_that_needed_the_held_back_library_says_what_to_declare(monkeypatch):
    asked = ImportError("Using bitsandbytes 4-bit quantization requires bitsandbytes")
    assert explain_held_back(asked) is asked  # not held back in this process
    monkeypatch.setitem(sys.modules, QUANTIZER, None)
    explained = explain_held_back(asked)
    assert "requires.packages" in str(explained) and explained.__cause__ is asked
    other = ValueError("a different failure")
    assert explain_held_back(other) is other


def test_the_training_process_trains_without_loading_bitsandbytes(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"max_steps": 2})
    # `python -m engine.runner RUN`, telling at exit whether bitsandbytes was imported
    script = (
        "import runpy, sys\ntry:\n    runpy.run_module('engine.runner', run_name='__main__')\n"
        "finally:\n    print('bitsandbytes imported:', sys.modules.get('bitsandbytes') is not None)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(run.path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bitsandbytes not loaded" in done.stdout
    assert "bitsandbytes imported: False" in done.stdout
    assert run.status()["state"] == "completed"
    assert run.results()["global_step"] == 2
