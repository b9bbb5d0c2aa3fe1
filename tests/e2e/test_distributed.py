"""One recipe on one process and on two (torchrun, gloo on CPU): the same training, files written once.

Both runs see the same global batches: the single process takes 4 examples a step,
each of the two ranks 2 (the length-grouped sampler hands consecutive half-batches
to the two ranks), with the same seed. Dropout is off in the test model and in LoRA,
because each rank would draw its own masks. What is left is the order of float
additions (DDP averages two half-batch gradients, the single process one full
batch), about 1e-7 relative on these losses; the tolerance is 1e-4.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NEGATIVE, POSITIVE, minilm_dir, tiny_model_config, write_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
REL_TOL = 1e-4


def env() -> dict[str, str]:
    values = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    values["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), values.get("PYTHONPATH")]))
    return values


def peftlab(runs_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", "--runs-dir", str(runs_dir), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env(),
        cwd=str(runs_dir.parent),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT without dropout, 16 training rows and an odd number (7) of validation rows."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    root = tmp_path_factory.mktemp("ddp")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    config = tiny_model_config("bert", len(tokenizer))
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(str(root / "model"))
    tokenizer.save_pretrained(str(root / "model"))
    pos, neg = [(t, 1) for t in POSITIVE], [(t, 0) for t in NEGATIVE]
    write_rows(
        root / "data" / "train.csv", [r for p in zip(pos[:8], neg[:8], strict=True) for r in p]
    )
    write_rows(root / "data" / "validation.csv", pos[8:12] + neg[8:11])
    return {"root": root, "model": root / "model", "data": root / "data"}


def recipe_args(setup: dict[str, Path], per_device_batch: int, name: str) -> list[str]:
    return [
        "train",
        "--dataset", "rotten_tomatoes",
        "--set", f"dataset.path={setup['data']}",
        "--set", "dataset.max_length=32",
        "--model", "bert",
        "--set", f"model.name_or_path={setup['model']}",
        "--technique", "lora",
        "--set", "technique.r=4",
        "--set", "technique.dropout=0",
        "--set", "trainer.epochs=2",
        "--set", "trainer.learning_rate=0.01",
        "--set", f"trainer.batch_size={per_device_batch}",
        "--set", "trainer.eval_batch_size=2",
        "--set", "trainer.logging_steps=1",
        # full precision: bf16 products summed over other batch splits differ by more than
        # REL_TOL, and this checks the split, not the precision
        "--set", "trainer.mixed_precision=no",
        "--name", name,
    ]  # fmt: skip


def finished_run(runs_dir: Path, done: subprocess.CompletedProcess) -> Path:
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    return run_dir


@pytest.fixture(scope="module")
def runs(setup) -> dict[str, Path]:
    """The single-process run (batch 4) and the two-process run (batch 2 per rank)."""
    made = {}
    for name, batch, extra in (("single", 4, []), ("ddp", 2, ["--nproc", "2"])):
        runs_dir = setup["root"] / f"runs-{name}"
        runs_dir.mkdir()
        made[name] = finished_run(
            runs_dir, peftlab(runs_dir, *recipe_args(setup, batch, name), *extra)
        )
    return made


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def metric_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def adapter_weights(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


def test_both_ranks_trained_as_one_group(runs):
    log = (runs["ddp"] / "log.txt").read_text()
    assert "rank 0 of 2: trained 8 steps" in log
    assert "rank 1 of 2: trained 8 steps" in log
    r = results(runs["ddp"])
    assert r["world_size"] == 2
    assert r["global_step"] == results(runs["single"])["global_step"] == 8  # 16 rows / 4 x 2
    assert r["ddp_find_unused_parameters"] is False  # LoRA leaves no trainable weight unused
    assert r["peak_memory_scope"] == "largest process"


def test_run_files_are_written_once(runs):
    run_dir = runs["ddp"]
    lines = metric_lines(run_dir)
    steps = [line["step"] for line in lines if "loss" in line]
    assert steps == list(range(1, 9))  # one line per step, not one per rank
    assert sum("baseline_accuracy" in line for line in lines) == 1
    assert sorted(p.name for p in (run_dir / "adapter").glob("adapter_*")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (
        json.loads((run_dir / "adapter" / "peftlab.json").read_text())["technique"]["id"] == "lora"
    )
    assert json.loads((run_dir / "progress.json").read_text())["phase"] == "done"
    assert not list(run_dir.glob("**/*.tmp"))


def test_validation_is_scored_once_over_all_ranks(runs):
    for run_dir in runs.values():
        assert results(run_dir)["num_eval_samples"] == 7
        evaluations = [line for line in metric_lines(run_dir) if "eval_accuracy" in line]
        assert evaluations and all(line["eval_examples"] == 7 for line in evaluations)
    single, ddp = results(runs["single"]), results(runs["ddp"])
    assert ddp["accuracy"] == single["accuracy"]
    assert ddp["baseline_accuracy"] == single["baseline_accuracy"]
    assert ddp["eval_loss"] == pytest.approx(single["eval_loss"], rel=REL_TOL)


def test_training_matches_one_process_with_the_same_global_batch(runs):
    single, ddp = results(runs["single"]), results(runs["ddp"])
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=REL_TOL)
    per_step = {
        name: [line["loss"] for line in metric_lines(run_dir) if "loss" in line]
        for name, run_dir in runs.items()
    }
    assert per_step["ddp"] == pytest.approx(per_step["single"], rel=REL_TOL)
    a, b = adapter_weights(runs["single"]), adapter_weights(runs["ddp"])
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-4, key


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not installed")
def test_accelerate_launch_on_a_prepared_run_folder(setup, runs):
    """`peftlab train --prepare-only` then `accelerate launch -m engine.runner RUN_DIR`."""
    runs_dir = setup["root"] / "runs-accelerate"
    runs_dir.mkdir()
    prepared = peftlab(runs_dir, *recipe_args(setup, 2, "accelerate"), "--prepare-only")
    assert prepared.returncode == 0, prepared.stderr
    run_dir = Path(prepared.stdout.strip())
    assert json.loads((run_dir / "status.json").read_text())["state"] == "pending"
    launched = subprocess.run(
        ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "engine.runner", str(run_dir)],
        capture_output=True, text=True, timeout=600, env=env(), cwd=str(run_dir),
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    r = results(run_dir)
    assert r["world_size"] == 2
    assert r["train_loss"] == pytest.approx(results(runs["single"])["train_loss"], rel=REL_TOL)
