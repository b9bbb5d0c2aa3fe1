"""Generation tasks end to end on tiny models: GPT-2 (causal-lm) and T5 (seq2seq).

Runs go through the real engine (recipe resolve -> run folder -> kernel.runner);
the models are built from configs (2 layers, hidden 32) with a byte-level BPE
tokenizer trained here on a few sentences, so nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from kernel import Kernel, KernelConfig
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runner import main as runner_main
from kernel.runs import RunFolder

REPO = Path(__file__).resolve().parents[2]
GENERATION_KEYS = {"rouge1", "rouge2", "rougeL", "perplexity", "eval_loss", "train_loss"}
FAST = {
    "batch_size": 4,
    "eval_batch_size": 8,
    "logging_steps": 1,
    "max_steps": 3,
    "max_new_tokens": 4,
    "rouge_samples": 3,
    "group_by_length": False,
}
SENTENCES = [
    "### Instruction: Give the opposite of the word: hot ### Response: cold",
    "Write the plural of: mouse. mice. Name the colour of grass: green.",
    "summarize: The town council met on Tuesday and agreed to keep the library open.",
    "The library will stay open on Sundays after a petition signed by residents.",
    "What is 7 plus 5? 12. How many legs does a spider have? Eight.",
    "the quick brown fox jumps over the lazy dog near the river bank",
]


def train_tokenizer(special: list[str]) -> Any:
    """A byte-level BPE tokenizer (GPT-2's kind) with a few hundred tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 4, trainer)
    return tok


def save_tiny_gpt2(folder: Path, wide: bool = False) -> Path:
    """GPT-2 with 2 layers, hidden 32 (64 when `wide`: bitsandbytes' CPU kernels need it)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    end = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer([end]), bos_token=end, eos_token=end, unk_token=end
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=64 if wide else 32,
        n_layer=2,
        n_head=2,
        n_positions=256,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def save_tiny_t5(folder: Path, wide: bool = False) -> Path:
    """T5 with 2 layers, hidden 32 (64 when `wide`), pad 0 / EOS 1 like the real T5."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = train_tokenizer(["<pad>", "</s>", "<unk>"])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    hidden = 64 if wide else 32
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=hidden,
        d_kv=hidden // 2,
        d_ff=2 * hidden,
        num_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny models on a shared machine: one torch thread is many times faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "gpt2": save_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2")),
        "t5": save_tiny_t5(tmp_path_factory.mktemp("tiny-t5")),
    }


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    k = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=Path("/nonexistent"))
    )
    k.discover()
    return k


DATASET = {"gpt2": "instructions", "t5": "summaries"}


def make_run(
    kernel: Kernel,
    runs_dir: Path,
    model: str,
    model_dir: Path,
    technique: str,
    *,
    model_params: dict[str, Any] | None = None,
    technique_params: dict[str, Any] | None = None,
    trainer: dict[str, Any] | None = None,
) -> RunFolder:
    recipe = Recipe(
        name=f"test-{model}-{technique}",
        dataset=PluginChoice(
            id=DATASET[model], params={"train_samples": 12, "eval_samples": 4, "max_length": 48}
        ),
        model=PluginChoice(
            id=model, params={"name_or_path": str(model_dir), **(model_params or {})}
        ),
        technique=PluginChoice(id=technique, params=technique_params or {}),
        trainer=PluginChoice(id="hf_trainer", params={**FAST, **(trainer or {})}),
    )
    return prepare_run(resolve(recipe, kernel.snapshot, kernel.graph()), runs_dir)


def execute(run: RunFolder) -> dict[str, Any]:
    runner_main([str(run.path)])
    status = run.status()
    assert status["state"] == "completed", status.get("traceback")
    return run.results()


def check_generation_results(results: dict[str, Any], technique: str, model: str) -> None:
    assert GENERATION_KEYS <= set(results)
    for key in ("rouge1", "rouge2", "rougeL"):
        assert 0.0 <= results[key] <= 1.0, key
    assert results["perplexity"] == pytest.approx(math.exp(results["eval_loss"]))
    assert results["perplexity"] > 1.0
    assert (results["technique"], results["model"]) == (technique, model)
    assert results["num_rouge_samples"] == FAST["rouge_samples"]
    assert results["global_step"] == FAST["max_steps"]
    assert 0 < results["trainable_params"] < results["total_params"]
    assert results["accuracy"] is None


# --- the engine: LoRA and prefix tuning on both tasks ---


def test_causal_lm_lora_with_new_tokens_trains_reloads_and_predicts(kernel, tmp_path, tiny_lms):
    from click.testing import CliRunner

    from ui.cli import cli
    from ui.inference import load_generator

    run = make_run(
        kernel,
        tmp_path,
        "gpt2",
        tiny_lms["gpt2"],
        "lora",
        model_params={"add_tokens": "<answer>, <end_answer>"},
    )
    results = execute(run)
    check_generation_results(results, "lora", "gpt2")
    assert results["baseline_perplexity"] > 1.0 and results["baseline_rougeL"] is not None
    assert results["new_tokens"] == 2
    assert results["max_target_length"] is None  # causal LM: one sequence

    info = json.loads((run.adapter_dir / "peftlab.json").read_text())
    assert info["task"] == "causal-lm" and info["max_new_tokens"] == FAST["max_new_tokens"]
    assert info["input_template"].startswith("### Instruction:")
    # the new tokens' embedding rows were trained and saved with the adapter, the tokenizer too
    from safetensors.torch import load_file

    saved = load_file(str(run.adapter_dir / "adapter_model.safetensors"))
    rows = [v for k, v in saved.items() if k.endswith("trainable_tokens_delta")]
    assert len(rows) == 1 and tuple(rows[0].shape) == (2, 32)
    added = json.loads((run.adapter_dir / "tokenizer.json").read_text())["added_tokens"]
    assert {"<answer>", "<end_answer>"} <= {t["content"] for t in added}

    generator = load_generator(run.path)
    first = generator.generate(["Give the opposite of the word: tall"])
    assert isinstance(first[0], str)
    # greedy: the reloaded model writes the same text every time
    assert generator.generate(["Give the opposite of the word: tall"]) == first

    out = CliRunner().invoke(
        cli,
        ["--runs-dir", str(tmp_path), "predict", run.id, "Write the plural of: goose", "--json"],
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows[0]["text"] == "Write the plural of: goose" and isinstance(rows[0]["generated"], str)


def test_seq2seq_lora_trains_with_rouge_and_perplexity(kernel, tmp_path, tiny_lms):
    from ui.inference import generate

    run = make_run(kernel, tmp_path, "t5", tiny_lms["t5"], "lora")
    results = execute(run)
    check_generation_results(results, "lora", "t5")
    assert results["max_target_length"] == 64  # the summaries dataset's default
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    info = json.loads((run.adapter_dir / "peftlab.json").read_text())
    assert info["task"] == "seq2seq" and info["input_template"] == "summarize: {input}"
    lines = run.metrics()
    assert any("eval_rougeL" in line for line in lines)
    assert any("loss" in line for line in lines)
    assert isinstance(generate(run.path, "The bridge reopened after repairs."), str)


@pytest.mark.parametrize("model", ["gpt2", "t5"])
def test_prefix_tuning_trains_on_both_tasks(model, kernel, tmp_path, tiny_lms):
    from ui.inference import load_generator

    run = make_run(
        kernel,
        tmp_path,
        model,
        tiny_lms[model],
        "prefix_tuning",
        technique_params={"num_virtual_tokens": 4},
        trainer={"measure_baseline": False},
    )
    results = execute(run)
    check_generation_results(results, "prefix_tuning", model)
    # keys and values of 4 virtual tokens in each of 2 layers (for T5 peft prefixes the decoder)
    assert results["trainable_params"] == 4 * 2 * 32 * 2
    assert results["baseline_perplexity"] is None
    assert (run.adapter_dir / "adapter_config.json").is_file()
    assert len(load_generator(run.path).generate(["a", "a longer prompt here"])) == 2
