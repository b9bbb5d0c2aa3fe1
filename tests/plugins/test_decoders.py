"""Decoder-only models (tiny Llama and Qwen2) through the training pipeline: sequence
classification with last-token pooling, instruction tuning with the tokenizer's chat
template, and QLoRA on the CPU.

The models are built from a config (hidden 64, 2 layers: wide enough for bitsandbytes'
4-bit CPU kernels) with the shipped MiniLM vocabulary, given an EOS, no pad token (as
decoder tokenizers ship), a config naming another pad id (as some Llama checkpoints
do) and a small chat template. They are served by a model bundle
written here. The capability graph's technique allow-lists do not name these families,
and these tests are about the trainer, so recipes are resolved with a graph that
accepts every combination.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.runner import main as runner_main
from kernel import Kernel, KernelConfig
from kernel.config import PRIORITY_EXPLICIT
from kernel.discovery import BundleLocation
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runs import RunFolder
from sdk.testing import tiny_vocab_dir

FAMILIES = ("llama", "qwen2")
#: turns start with [CLS] and end with [SEP] (the EOS), so both are single special tokens
CHAT_TEMPLATE = (
    "{% for m in messages %}[CLS] {{ m['role'] }} : {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}[CLS] assistant : {% endif %}"
)
FAST = {"batch_size": 4, "eval_batch_size": 8, "logging_steps": 1, "group_by_length": False}
GENERATE = {**FAST, "max_steps": 3, "max_new_tokens": 4, "rouge_samples": 3}
MANIFEST = """\
id: tiny_decoder
kind: model
name: Tiny decoder
version: 1.0.0
api: 1
entry: model:TinyDecoder
summary: A decoder-only model from a local folder, as a classifier or a causal LM.
provides: [quantizable]
model:
  architecture: {family}
  tasks: [sequence-classification, causal-lm]
  attention_modules: [q_proj, k_proj, v_proj, o_proj]
  feedforward_modules: [gate_proj, up_proj, down_proj]
  default_target_modules: [q_proj, v_proj]
  classifier_modules: [score]
params:
  name_or_path: {{type: str, default: "", help: A local folder with config.json.}}
"""
MODEL_PY = '''"""A decoder-only model: a sequence classifier or a causal LM, by the run's task."""

from sdk import ModelProvider
from sdk.hf import load_language_model, load_sequence_classifier, load_tokenizer


class TinyDecoder(ModelProvider):
    def load(self, ctx):
        source = ctx.params["name_or_path"]
        if ctx.task == "sequence-classification":
            return load_sequence_classifier(ctx, source)
        return load_language_model(ctx, source)

    def load_tokenizer(self, ctx):
        return load_tokenizer(ctx.params["name_or_path"])
'''


def decoder_tokenizer(chat: bool) -> Any:
    """The MiniLM vocabulary as a decoder tokenizer: [SEP] is the EOS, no pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_vocab_dir()))
    tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token = "[SEP]", "[CLS]", None
    tokenizer.chat_template = CHAT_TEMPLATE if chat else None
    return tokenizer


def save_tiny_decoder(family: str, folder: Path) -> Path:
    """A seeded random causal LM of `family` (llama, qwen2) and its chat tokenizer in `folder`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = decoder_tokenizer(chat=True)
    config = AutoConfig.for_model(family, hidden_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2,
                                  intermediate_size=128, vocab_size=len(tokenizer),
                                  max_position_embeddings=128, tie_word_embeddings=False,
                                  # as in some Llama checkpoints: a pad id the tokenizer
                                  # does not pad with (it pads with EOS)
                                  pad_token_id=tokenizer.convert_tokens_to_ids("[PAD]"),
                                  bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


class AnyFit:
    """A capability graph that accepts every combination (see the module docstring)."""

    def check(self, ids: Any) -> list[str]:
        return []


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """Tiny models on a shared machine: one torch thread is many times faster than two."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def decoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {f: save_tiny_decoder(f, tmp_path_factory.mktemp(f"tiny-{f}")) for f in FAMILIES}


def kernel_with_decoder(family: str, folder: Path) -> Kernel:
    """The built-in plugins plus the `tiny_decoder` model bundle, written in `folder`."""
    bundle = folder / "tiny_decoder"
    bundle.mkdir()
    (bundle / "plugin.yaml").write_text(MANIFEST.format(family=family), encoding="utf-8")
    (bundle / "model.py").write_text(MODEL_PY, encoding="utf-8")
    kernel = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=folder / "none")
    )
    kernel.discover()
    change = kernel.registry.update_folder(BundleLocation(bundle, "path", PRIORITY_EXPLICIT))
    assert change.action != "failed", change.error
    return kernel


def train(
    tmp_path: Path,
    family: str,
    model_dir: Path,
    dataset: PluginChoice,
    technique: str,
    trainer: dict[str, Any],
) -> RunFolder:
    """One run of the tiny decoder through the real runner; fails with the run's traceback."""
    kernel = kernel_with_decoder(family, tmp_path)
    recipe = Recipe(
        name=f"decoder-{family}-{technique}",
        dataset=dataset,
        model=PluginChoice(id="tiny_decoder", params={"name_or_path": str(model_dir)}),
        technique=PluginChoice(id=technique, params={"r": 4}),
        trainer=PluginChoice(id="hf_trainer", params=trainer),
    )
    run = prepare_run(resolve(recipe, kernel.snapshot, AnyFit()), tmp_path / "runs")
    runner_main([str(run.path)])
    status = run.status()
    assert status["state"] == "completed", status.get("traceback")
    return run


def reviews(data_dir: Path) -> PluginChoice:
    return PluginChoice(id="rotten_tomatoes", params={"path": str(data_dir), "max_length": 32})


INSTRUCTIONS = PluginChoice(
    id="instructions", params={"train_samples": 12, "eval_samples": 4, "max_length": 48}
)


# --- sequence classification on a decoder ---


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_classifier_pools_the_last_real_token_on_either_padding_side(
    family, decoders, tmp_path, tiny_csv_dir
):
    from safetensors import safe_open

    from engine.inference import load_classifier

    run = train(tmp_path, family, decoders[family], reviews(tiny_csv_dir), "lora", FAST)
    results = run.results()
    assert 0.0 <= results["accuracy"] <= 1.0 and results["global_step"] == 4
    assert 0 < results["trainable_params"] < results["total_params"]
    with safe_open(str(run.adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        assert any(".score." in key for key in weights.keys())  # the new head trained and saved

    classifier = load_classifier(run.path)
    # the tokenizer had no pad token: it pads with EOS, and the model's config says so
    assert classifier.tokenizer.pad_token == "[SEP]"
    assert classifier.model.config.pad_token_id == classifier.tokenizer.pad_token_id
    texts = ["fine", "a long, slow and very dull film about nothing at all"]
    alone = [classifier.predict([t])[0].probabilities for t in texts]
    for side in ("right", "left"):
        classifier.tokenizer.padding_side = side
        batched = [p.probabilities for p in classifier.predict(texts)]
        for got, want in zip(batched, alone, strict=True):
            assert got == pytest.approx(want, abs=1e-5), side


# --- instruction tuning: chat template, prompt masked from the loss ---


def test_chat_template_prompt_is_masked_and_the_turn_end_is_learned():
    from sdk.textgen import encode_causal, render_prompt

    tokenizer = decoder_tokenizer(chat=True)
    encoded = encode_causal(["the opposite of hot"], ["cold"], tokenizer, template=None,
                            max_length=64)  # fmt: skip
    ids, labels = encoded["input_ids"][0], encoded["labels"][0]
    shown = render_prompt(tokenizer, "ignored {input}", "the opposite of hot")
    prompt_ids = tokenizer(shown, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
    learned = [i for i in labels if i != -100]
    # the assistant's text and the template's end of turn, which is the EOS: learned once
    assert tokenizer.convert_ids_to_tokens(learned) == ["cold", "[SEP]"]
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["[CLS]", "user"]


def test_without_a_chat_template_the_plain_template_is_used():
    from sdk.textgen import encode_causal

    tokenizer = decoder_tokenizer(chat=False)
    encoded = encode_causal(["hot"], ["cold"], tokenizer, template="opposite of {input} :",
                            max_length=64)  # fmt: skip
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    # the tokenizer's own special tokens around the templated prompt, then completion + EOS
    assert tokens == ["[CLS]", "opposite", "of", "hot", ":", "[SEP]", "cold", "[SEP]"]
    learned = [i for i in encoded["labels"][0] if i != -100]
    assert tokenizer.convert_ids_to_tokens(learned) == ["cold", "[SEP]"]


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_instruction_tuning_trains_and_generates_through_the_chat_template(
    family, decoders, tmp_path
):
    from engine.inference import load_generator

    run = train(tmp_path, family, decoders[family], INSTRUCTIONS, "lora", GENERATE)
    results = run.results()
    assert results["task"] == "causal-lm" and results["global_step"] == 3
    assert 0.0 <= results["rougeL"] <= 1.0 and results["perplexity"] > 1.0
    info = json.loads((run.adapter_dir / "peftlab.json").read_text())
    assert info["chat_template"] is True
    generator = load_generator(run.path)
    assert generator.tokenizer.chat_template == CHAT_TEMPLATE
    assert isinstance(generator.generate(["Name a colour."], max_new_tokens=3)[0], str)


# --- QLoRA 4-bit on decoders, on the CPU ---


# the default run keeps one QLoRA decoder run; the causal-lm one (about 10 s here) is slow
@pytest.mark.parametrize(
    "task", ["sequence-classification", pytest.param("causal-lm", marks=pytest.mark.slow)]
)
def test_qlora_trains_a_decoder_on_the_cpu(task, decoders, tmp_path, tiny_csv_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks bitsandbytes' CPU path")
    classify = task == "sequence-classification"
    dataset = reviews(tiny_csv_dir) if classify else INSTRUCTIONS
    run = train(tmp_path, "llama", decoders["llama"], dataset, "qlora",
                FAST if classify else GENERATE)  # fmt: skip
    from engine.inference import load_classifier, load_generator

    results = run.results()
    if classify:
        assert 0.0 <= results["accuracy"] <= 1.0
    else:
        assert results["perplexity"] > 1.0 and 0.0 <= results["rougeL"] <= 1.0
    # the adapter reloads onto the 4-bit base it was trained on (QLoRA refuses any other)
    model = (load_classifier if classify else load_generator)(run.path).model
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
