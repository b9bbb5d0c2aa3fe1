"""`peftlab export --merge` and `peftlab adapters predict|merge` on runs of a tiny BERT.

The runs are trained in this process through the real runner (engine.runner.main
on prepared run folders): the same code path as a subprocess run, without paying
for a new Python process per run. The commands are driven through click.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.runner import main as run_main
from kernel import Kernel, KernelConfig
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runs import RunFolder

TEXTS = ["a warm and clever film", "it broke on the first day"]


def train(kernel: Kernel, runs_dir: Path, model_dir: Path, data_dir: Path, technique: str,
          name: str, **params: object) -> RunFolder:  # fmt: skip
    recipe = Recipe(
        name=name,
        dataset=PluginChoice(
            id="rotten_tomatoes", params={"path": str(data_dir), "max_length": 32}
        ),
        model=PluginChoice(id="bert", params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id=technique, params=dict(params)),
        trainer=PluginChoice(
            id="hf_trainer",
            params={
                "max_steps": 4,
                "batch_size": 4,
                "learning_rate": 0.05,  # large, so the adapters really move the weights
                "measure_baseline": False,
                "logging_steps": 2,
            },
        ),
    )
    resolved = resolve(recipe, kernel.snapshot, kernel.graph())
    run = prepare_run(resolved, runs_dir)
    assert run_main([str(run.path)]) == 0, (run.path / "status.json").read_text()
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_models, tiny_csv_dir):
    root = tmp_path_factory.mktemp("export")
    kernel = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=root / "none")
    )
    kernel.discover()
    runs_dir = root / "runs"
    made = {}
    for key, technique, params in (
        ("lora_a", "lora", {"r": 4}),
        ("lora_b", "lora", {"r": 4, "alpha": 8}),
        ("ia3", "ia3", {}),
        ("prompt", "prompt_tuning", {}),
    ):
        made[key] = train(
            kernel, runs_dir, tiny_models["bert"], tiny_csv_dir, technique, key, **params
        )
    return runs_dir, made


def cli(runs_dir: Path, *args: str):
    from ui.cli import cli as peftlab

    return CliRunner().invoke(peftlab, ["--runs-dir", str(runs_dir), *args])


def plain_logits(model_dir: Path, texts: list[str], adapter_dir: Path | None = None):
    """Logits from plain transformers (+ plain peft when an adapter folder is given)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), num_labels=2)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir or model_dir))
    batch = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**batch).logits


@pytest.mark.parametrize("key", ["lora_a", "ia3"])
def test_export_merge_gives_the_same_logits(runs, tiny_models, tmp_path, key):
    runs_dir, made = runs
    run = made[key]
    out = tmp_path / "merged"
    done = cli(runs_dir, "export", run.id, "--merge", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "max abs diff" in done.output
    diff = float(done.output.split("max abs diff ")[1].split()[0])
    assert diff < 1e-4
    # a standalone model: plain transformers, no peft, agrees with base + adapter through peft
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    merged = plain_logits(out, TEXTS)
    reference = plain_logits(tiny_models["bert"], TEXTS, run.adapter_dir)
    assert (merged - reference).abs().max() < 1e-4
    # and the adapter did change the base weights (the merge is not a no-op)
    from safetensors.torch import load_file

    base = load_file(str(tiny_models["bert"] / "model.safetensors"))
    weights = load_file(str(out / "model.safetensors"))
    name = next(k for k in weights if k.endswith("layer.0.attention.self.value.weight"))
    base_name = next(k for k in base if k.endswith("layer.0.attention.self.value.weight"))
    assert (weights[name] - base[base_name]).abs().max() > 1e-4


def test_export_refuses_prompt_learning_and_non_empty_out(runs, tmp_path):
    runs_dir, made = runs
    refused = cli(runs_dir, "export", made["prompt"].id, "--merge", "--out", str(tmp_path / "m"))
    assert refused.exit_code == 2
    assert "prompt_tuning" in refused.output and "cannot be merged" in refused.output
    assert not (tmp_path / "m").exists()
    copied = cli(runs_dir, "export", made["lora_a"].id, "--out", str(tmp_path / "plain"))
    assert copied.exit_code == 0, copied.output
    assert (tmp_path / "plain" / "adapter_config.json").is_file()


def test_adapters_predict_switches_adapters_on_one_base(runs, monkeypatch):
    import sdk.hf

    runs_dir, made = runs
    a, b = made["lora_a"], made["lora_b"]
    loads = []
    real = sdk.hf.load_base_model
    monkeypatch.setattr(sdk.hf, "load_base_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    texts = sum((["--text", t] for t in TEXTS), [])
    done = cli(runs_dir, "adapters", "predict", a.id, b.id, *texts, "--json")
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert len(loads) == 1  # the base model was built once for both adapters
    assert list(payload["adapters"]) == [a.id, b.id]
    for run in (a, b):
        alone = json.loads(cli(runs_dir, "predict", run.id, *TEXTS, "--json").output)
        switched = payload["adapters"][run.id]
        for mine, ref in zip(switched, alone, strict=True):
            assert mine["label"] == ref["label"]
            assert mine["probabilities"]["positive"] == pytest.approx(
                ref["probabilities"]["positive"], abs=1e-5
            )
    # the two adapters really are different models
    pa = [p["probabilities"]["positive"] for p in payload["adapters"][a.id]]
    pb = [p["probabilities"]["positive"] for p in payload["adapters"][b.id]]
    assert pa != pytest.approx(pb, abs=1e-6)


def test_adapters_of_different_kinds_are_refused(runs):
    runs_dir, made = runs
    done = cli(runs_dir, "adapters", "predict", made["lora_a"].id, made["ia3"].id, "--text", "x")
    assert done.exit_code == 2 and "different kinds" in done.output


@pytest.mark.parametrize(
    "args",
    [
        ["--method", "linear"],
        ["--method", "ties", "--density", "0.5", "--weights", "0.7,0.3"],
        ["--method", "cat", "--head", "first"],
    ],
)
def test_adapters_merge_loads_with_plain_peft(runs, tiny_models, tmp_path, args):
    runs_dir, made = runs
    out = tmp_path / "combined"
    done = cli(runs_dir, "adapters", "merge", made["lora_a"].id, made["lora_b"].id, *args,
               "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "SEQ_CLS"
    assert "classifier" in config["modules_to_save"]
    logits = plain_logits(tiny_models["bert"], TEXTS, out)
    assert logits.shape == (2, 2)
    reported = float(done.output.split("within ")[1].split()[0])
    assert reported < 1e-4


def test_combining_with_weights_one_and_zero_gives_back_the_first_adapter(
    runs, tiny_models, tmp_path
):
    runs_dir, made = runs
    out = tmp_path / "first-only"
    done = cli(runs_dir, "adapters", "merge", made["lora_a"].id, made["lora_b"].id,
               "--weights", "1,0", "--method", "linear", "--head", "first", "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    combined = plain_logits(tiny_models["bert"], TEXTS, out)
    first = plain_logits(tiny_models["bert"], TEXTS, made["lora_a"].adapter_dir)
    assert (combined - first).abs().max() < 1e-4


def test_qlora_merges_into_the_dequantized_base(tmp_path, tiny_csv_dir):
    """QLoRA: the 4-bit base is dequantized and the adapter merged in float32.

    bitsandbytes quantizes in blocks of 64 values, so this model is a little wider
    than the shared tiny ones.
    """
    from tests.conftest import save_quantizable_bert

    model_dir = save_quantizable_bert(tmp_path / "bert64")
    kernel = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=tmp_path / "x")
    )
    kernel.discover()
    runs_dir = tmp_path / "runs"
    run = train(kernel, runs_dir, model_dir, tiny_csv_dir, "qlora", "q", r=4)
    out = tmp_path / "merged"
    done = cli(runs_dir, "export", run.id, "--merge", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert "dequantized" in done.output
    saved = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in saved  # a plain float model, no bitsandbytes needed
    assert float(done.output.split("max abs diff ")[1].split()[0]) < 1e-4
