"""The hf_trainer bundle through the real runner, in this process, on tiny models and data."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.runner import main as runner_main
from kernel import Kernel
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runs import RunFolder

RESULT_KEYS = """accuracy f1_macro eval_loss train_loss baseline_accuracy baseline_f1_macro
trainable_params total_params trainable_percent train_runtime_s train_samples_per_s
train_steps_per_s train_tokens_per_s peak_memory_mb peak_memory_kind model_footprint_mb
adapter_size_mb inference_samples_per_s global_step epochs num_train_samples
num_eval_samples learning_rate label_names technique model dataset""".split()

FAST = {"batch_size": 4, "eval_batch_size": 8, "logging_steps": 1, "epochs": 1.0}


def make_run(
    kernel: Kernel,
    runs_dir: Path,
    model_dir: Path,
    data_dir: Path,
    *,
    technique: str = "lora",
    model: str = "bert",
    trainer: dict[str, Any] | None = None,
    technique_params: dict[str, Any] | None = None,
) -> RunFolder:
    recipe = Recipe(
        name=f"test-{technique}",
        dataset=PluginChoice(
            id="rotten_tomatoes", params={"path": str(data_dir), "max_length": 32}
        ),
        model=PluginChoice(id=model, params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id=technique, params=technique_params or {}),
        trainer=PluginChoice(id="hf_trainer", params={**FAST, **(trainer or {})}),
    )
    return prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), runs_dir)


def execute(run: RunFolder, *extra: str) -> dict[str, Any]:
    runner_main([str(run.path), *extra])
    status = run.status()
    assert status["state"] == "completed", status.get("traceback")
    return run.results()


def test_lora_run_writes_results_metrics_progress_and_adapter(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"epochs": 2.0})
    results = execute(run)
    assert set(RESULT_KEYS) <= set(results)
    assert results["global_step"] == 8  # 16 rows / batch 4 x 2 epochs
    assert results["epochs"] == pytest.approx(2.0)
    assert (results["num_train_samples"], results["num_eval_samples"]) == (16, 4)
    assert results["learning_rate"] == 2e-3  # trainer.learning_rate 0 -> the technique's rate
    assert 0 < results["trainable_params"] < results["total_params"]
    assert results["trainable_percent"] == pytest.approx(
        100 * results["trainable_params"] / results["total_params"]
    )
    assert 0.0 <= results["accuracy"] <= 1.0 and results["baseline_accuracy"] is not None
    import torch

    assert results["peak_memory_kind"] == ("cuda" if torch.cuda.is_available() else "rss")
    assert results["peak_memory_mb"] > 0
    assert results["train_tokens_per_s"] > 0 and results["inference_samples_per_s"] > 0
    assert 0 < results["adapter_size_mb"] < results["model_footprint_mb"]
    assert results["label_names"] == ["negative", "positive"]
    assert (results["technique"], results["model"], results["dataset"]) == (
        "lora",
        "bert",
        "rotten_tomatoes",
    )

    lines = run.metrics()
    training = [r for r in lines if "loss" in r]
    assert [r["step"] for r in training] == list(range(1, 9))
    assert all({"epoch", "learning_rate", "grad_norm", "time"} <= set(r) for r in training)
    evals = [r for r in lines if "eval_accuracy" in r]
    assert [r["step"] for r in evals] == [4, 8]  # once per epoch
    assert all({"eval_loss", "eval_f1_macro", "epoch"} <= set(r) for r in evals)
    assert any("baseline_accuracy" in r for r in lines)

    progress = run.progress()
    assert progress["phase"] == "done"
    assert progress["step"] == progress["total_steps"] == 8

    adapter = run.adapter_dir
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "peftlab.json",
        "tokenizer.json",
    ):
        assert (adapter / name).is_file(), name
    info = json.loads((adapter / "peftlab.json").read_text())
    assert info["label_names"] == ["negative", "positive"]
    assert info["model"]["id"] == "bert" and info["technique"]["id"] == "lora"
    assert info["model"]["base"] == str(tiny_models["bert"])
    assert run.latest_checkpoint().name == "checkpoint-8"


def test_full_on_distilbert_with_step_evaluation_and_no_baseline(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    run = make_run(
        kernel,
        tmp_path,
        tiny_models["distilbert"],
        tiny_csv_dir,
        technique="full",
        model="distilbert",
        trainer={
            "max_steps": 3,
            "eval_steps": 2,
            "measure_baseline": False,
            "group_by_length": False,
        },
    )
    results = execute(run)
    assert results["global_step"] == 3
    assert results["trainable_params"] == results["total_params"]
    assert results["baseline_accuracy"] is None
    assert results["learning_rate"] == 5e-5
    assert [r["step"] for r in run.metrics() if "eval_accuracy" in r] == [2, 3]
    assert (run.adapter_dir / "model.safetensors").is_file()

    from engine.inference import load_classifier

    predictions = load_classifier(run.path).predict(["a lovely film", "it broke at once"])
    assert [set(p.probabilities) for p in predictions] == [{"negative", "positive"}] * 2
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in predictions)


def test_resume_continues_to_the_same_final_step(kernel, tmp_path, tiny_models, tiny_csv_dir):
    run = make_run(
        kernel,
        tmp_path,
        tiny_models["roberta"],
        tiny_csv_dir,
        model="roberta",
        trainer={"max_steps": 4, "save_steps": 2, "measure_baseline": False},
    )
    execute(run)
    # as if the process had been stopped after the checkpoint at step 2
    shutil.rmtree(run.checkpoints_dir / "checkpoint-4")
    shutil.rmtree(run.adapter_dir)
    (run.path / "results.json").unlink()
    run.set_status("interrupted")

    results = execute(run, "--resume")
    assert results["global_step"] == 4
    assert results["resumed_from"].endswith("checkpoint-2")
    assert run.status()["resumed"] is True
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    # steps after the checkpoint were trained again, the ones before it were not; the stopped
    # session's lines for the redone steps were dropped, so each step is logged once
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == [1, 2, 3, 4]


def test_planned_steps_match_the_trainer(tmp_path):
    from transformers import TrainingArguments

    module = trainer_module()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        num_train_epochs=1.5,
        report_to="none",
    )
    assert module.planned_steps(16, args) == 9  # ceil(16/3)=6 batches per epoch x 1.5
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=3,
        num_train_epochs=1,
        report_to="none",
    )
    assert module.planned_steps(16, args) == 2


def trainer_module() -> Any:
    """The hf_trainer bundle's entry module, imported the way the runner imports it."""
    import sys

    from kernel.discovery import BundleLocation
    from kernel.registry import read_bundle

    folder = Path(__file__).resolve().parents[2] / "plugins" / "trainers" / "hf_trainer"
    entry = read_bundle(BundleLocation(folder, "builtin", 0)).instantiate()
    return sys.modules[type(entry).__module__]


def test_failures_are_recorded_with_a_clear_message(kernel, tmp_path, tiny_csv_dir):
    run = make_run(kernel, tmp_path, tmp_path / "no-model-here", tiny_csv_dir)
    assert runner_main([str(run.path)]) == 1
    status = run.status()
    assert status["state"] == "failed"
    assert "ModelLoadError" in status["error"] and "no-model-here" in status["error"]
    assert run.results() is None


def test_fp16_on_cpu_is_refused(kernel, tmp_path, tiny_models, tiny_csv_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp16 is valid on a GPU")
    run = make_run(
        kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"mixed_precision": "fp16"}
    )
    assert runner_main([str(run.path)]) == 1
    assert "fp16 needs a CUDA GPU" in run.status()["error"]


def test_unquoted_no_on_the_command_line_means_the_option_no(kernel):
    """`--set trainer.mixed_precision=no`: YAML reads `no` as false; the choice gets its option back."""
    recipe = Recipe(
        dataset=PluginChoice(id="demo"),
        model=PluginChoice(id="minilm"),
        technique=PluginChoice(id="lora"),
    ).with_overrides({}, ["trainer.mixed_precision=no", "trainer.measure_baseline=no"])
    params = resolve(recipe, kernel.snapshot, kernel.graph()).plugins["trainer"].params
    assert params["mixed_precision"] == "no"
    assert params["measure_baseline"] is False


@pytest.mark.parametrize(
    "technique, params",
    [
        ("lora", {"dropout": 0.1}),  # the recomputed forward must draw the same dropout masks
        ("adapter", {}),  # hand-written modules inside the checkpointed layers
        ("prefix_tuning", {}),  # attention patched by the bundle
    ],
)
def test_gradient_checkpointing_recomputes_each_layer_and_keeps_the_losses(
    kernel, tmp_path, tiny_models, tiny_csv_dir, monkeypatch, technique, params
):
    from transformers import AutoConfig
    from transformers.models.bert import modeling_bert

    # count the attention blocks inside each layer: the layer's own forward carries the
    # checkpointing wrapper and must stay as it is
    calls = {"n": 0}
    original = modeling_bert.BertAttention.forward

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(modeling_bert.BertAttention, "forward", counted)
    losses, layer_calls = {}, {}
    for checkpointing in (False, True):
        calls["n"] = 0
        run = make_run(
            kernel,
            tmp_path / f"checkpointing-{checkpointing}",
            tiny_models["bert"],
            tiny_csv_dir,
            technique=technique,
            trainer={"gradient_checkpointing": checkpointing, "measure_baseline": False},
            technique_params=params,
        )
        results = execute(run)
        losses[checkpointing] = [r["loss"] for r in run.metrics() if "loss" in r]
        layer_calls[checkpointing] = calls["n"]
    layers = AutoConfig.from_pretrained(tiny_models["bert"]).num_hidden_layers
    # the backward pass runs every layer's forward once more per training step
    assert layer_calls[True] - layer_calls[False] == results["global_step"] * layers
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


@pytest.mark.parametrize("asked", ["no", "bf16"])
def test_a_run_trains_in_the_precision_asked_for_and_records_it(
    kernel, tmp_path, tiny_models, tiny_csv_dir, asked
):
    run = make_run(
        kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"mixed_precision": asked}
    )
    results = execute(run)
    assert results["precision"] == asked
    assert results["global_step"] == 4 and math.isfinite(results["train_loss"])
    assert (run.path / "adapter").is_dir()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_on_a_cpu_that_computes_bf16_natively(
    kernel, tmp_path, tiny_models, tiny_csv_dir, monkeypatch, native
):
    import torch

    if torch.accelerator.is_available():
        pytest.skip("auto keeps full precision on an accelerator; this checks the CPU rule")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native)
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"max_steps": 1})
    assert run.record().trainer.params["mixed_precision"] == "auto"  # the default
    assert execute(run)["precision"] == ("bf16" if native else "no")


def test_cpu_threads_sets_the_training_process_thread_count(
    kernel, tmp_path, tiny_models, tiny_csv_dir
):
    import torch

    before = torch.get_num_threads()
    seen: list[int] = []
    from transformers import TrainerCallback

    class Threads(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            seen.append(torch.get_num_threads())

    run = make_run(
        kernel,
        tmp_path,
        tiny_models["bert"],
        tiny_csv_dir,
        trainer={"cpu_threads": 1, "max_steps": 2},
    )
    import transformers

    original = transformers.Trainer.__init__

    def with_probe(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), Threads()]
        original(self, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(transformers.Trainer, "__init__", with_probe)
            execute(run)
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]


@pytest.mark.slow
def test_torch_compile_trains_and_saves_an_adapter(kernel, tmp_path, tiny_models, tiny_csv_dir):
    run = make_run(
        kernel,
        tmp_path,
        tiny_models["bert"],
        tiny_csv_dir,
        trainer={"torch_compile": True, "max_steps": 3, "mixed_precision": "no"},
    )
    results = execute(run)
    assert results["global_step"] == 3
    assert (run.path / "adapter" / "adapter_model.safetensors").is_file()


def test_length_grouped_batches_read_the_length_column_not_every_row(
    kernel, tmp_path, tiny_models, tiny_csv_dir, monkeypatch
):
    """Measuring each example by iterating the training set reads every row (minutes and
    hundreds of MB of mapped pages on a million rows); the `length` column is enough."""
    import datasets

    def no_row_iteration(self: Any) -> Any:
        raise AssertionError("the training set was iterated row by row")

    monkeypatch.setattr(datasets.Dataset, "__iter__", no_row_iteration)
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, trainer={"max_steps": 2})
    assert run.record().trainer.params["group_by_length"] is True
    assert execute(run)["global_step"] == 2


def _bundle_module(name: str) -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "plugins" / "trainers" / "hf_trainer" / name
    spec = importlib.util.spec_from_file_location(f"hf_trainer_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rows, batch", [(10, 4), (1000, 8), (20_000, 32)])
def test_array_grouping_draws_the_order_transformers_draws(rows, batch):
    """Same generator state, same indices: runs keep their batches when the order is held
    in numpy arrays instead of Python lists."""
    import numpy as np
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    sampling = _bundle_module("sampling.py")
    lengths = np.random.default_rng(rows).integers(1, 64, size=rows).astype("int32")
    ours = sampling.grouped_indices(lengths, batch, torch.Generator().manual_seed(7))
    theirs = get_length_grouped_indices(
        lengths.tolist(), batch, generator=torch.Generator().manual_seed(7)
    )
    assert ours.tolist() == theirs
    sampler = sampling.grouped_sampler_class()(batch, lengths, torch.Generator().manual_seed(7))
    assert len(sampler) == rows and list(sampler) == theirs


def test_each_step_hands_back_the_cache_pages_its_batches_mapped(tmp_path):
    """Random batches map pages all over a cached split; without the callback 40 steps on
    1M rows left most of its 220 MB file resident."""
    import mmap

    from transformers import TrainerControl, TrainerState, TrainingArguments

    from tests.sdk.test_memory import mapped_mb

    paging = _bundle_module("paging.py")
    split = tmp_path / "tokenized.arrow"
    split.write_bytes(b"\x01" * (8 * 2**20))
    callback = paging.ReleaseCachePages(tmp_path)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    with split.open("rb") as handle, mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as view:
        for hook in (callback.on_step_begin, callback.on_prediction_step):
            assert sum(view[:: mmap.PAGESIZE]) > 0  # a batch's reads
            assert mapped_mb(split) > 7
            hook(args, TrainerState(), TrainerControl())
            assert mapped_mb(split) < 1
    assert callback.released >= 2 * 8 * 2**20


@pytest.mark.parametrize("init", ["eva", "corda"])
def test_lora_initialised_from_the_data_trains_and_saves_an_adapter_plain_peft_loads(
    init, kernel, tmp_path, tiny_models, tiny_csv_dir
):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    params = {"init_lora_weights": init, "r": 4}
    run = make_run(kernel, tmp_path, tiny_models["bert"], tiny_csv_dir, technique_params=params)
    results = execute(run)
    assert results["global_step"] == 4 and 0.0 <= results["accuracy"] <= 1.0
    saved = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    if init == "eva":  # ranks spread over the layers by the data, the budget kept
        assert saved["init_lora_weights"] == "eva"
        assert sum(saved["rank_pattern"].values()) == 4 * len(saved["rank_pattern"])
    else:  # CorDA moved W's components into the adapter: saved converted to a plain LoRA
        assert (saved["init_lora_weights"], saved["r"]) == (True, 8)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"], num_labels=2)
    assert isinstance(PeftModel.from_pretrained(base, str(run.adapter_dir)), PeftModel)


def test_calibration_draws_seeded_rows_padded_as_the_trainer_feeds_them():
    import datasets
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from authoring.tiny import tiny_vocab_dir

    calibration = _bundle_module("calibration.py")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_vocab_dir()))
    texts = [f"review number {i} " + "word " * (i % 7) for i in range(300)]
    rows = datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(300)]})
    # the columns of a tokenized split: the model's inputs, the label and `length`
    rows = rows.map(lambda b: {**tokenizer(b["text"]), "length": [len(t) for t in b["text"]]},
                    batched=True, remove_columns=["text"])  # fmt: skip
    collator = DataCollatorWithPadding(tokenizer)
    batches = calibration.calibration_source(rows, collator, 32, 42)()
    assert [len(b["input_ids"]) for b in batches] == [32] * 8  # 256 of the 300 rows
    assert type(batches[0]) is dict
    assert set(batches[0]) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    again = calibration.calibration_source(rows, collator, 32, 42)()
    other = calibration.calibration_source(rows, collator, 32, 7)()
    assert all(a["input_ids"].equal(b["input_ids"]) for a, b in zip(batches, again, strict=True))
    assert not batches[0]["input_ids"].equal(other[0]["input_ids"])
    few = calibration.calibration_batches(rows.select(range(10)), collator, 4, 42)
    assert [len(b["input_ids"]) for b in few] == [4, 4, 2]
    with pytest.raises(ValueError, match="the training split is empty"):
        calibration.calibration_batches(rows.select([]), collator, 4, 42)
