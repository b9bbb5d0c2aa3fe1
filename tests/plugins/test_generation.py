"""Generation tasks end to end on tiny models: GPT-2 (causal-lm) and T5 (seq2seq).

Runs go through the real engine (recipe resolve -> run folder -> engine.runner);
the models are built from configs (2 layers, hidden 32) with a byte-level BPE
tokenizer trained here on a few sentences, so nothing is downloaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from engine.runner import main as runner_main
from kernel import Kernel
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
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

    from engine.inference import load_generator
    from ui.cli import cli

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
    from engine.inference import generate

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

    from ui.commands.results_text import results_rows

    shown = dict(results_rows(results))
    assert "accuracy" not in shown and shown["ROUGE-L"].startswith(f"{results['rougeL']:.4f}")
    assert "before training" in shown["perplexity"]


@pytest.mark.parametrize("model", ["gpt2", "t5"])
def test_prefix_tuning_trains_on_both_tasks(model, kernel, tmp_path, tiny_lms):
    from engine.inference import load_generator

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


# --- techniques on the generation models, in this process: train, save, reload ---

TASKS = {"gpt2": "causal-lm", "t5": "seq2seq"}
PAIRS = [
    ("Give the opposite of the word: hot", "cold"),
    ("Write the plural of: mouse", "mice"),
    ("What is 7 plus 5?", "12"),
]


def plugin(kind: str, folder: Path, params: dict[str, Any]) -> Any:
    """A PluginHandle of a built-in bundle with its params completed, as the runner builds it."""
    from engine.plugins import load_plugin
    from kernel.discovery import BundleLocation
    from kernel.params import complete_params
    from kernel.registry import read_bundle

    bundle = read_bundle(BundleLocation(folder, "builtin", 0))
    return load_plugin(
        kind, {"path": str(folder), "params": complete_params(bundle.manifest, params)}
    )


def training_batch(tokenizer: Any, task: str) -> dict[str, Any]:
    from transformers import DataCollatorForSeq2Seq

    from sdk.textgen import encode_causal, encode_seq2seq

    inputs, outputs = [p for p, _ in PAIRS], [c for _, c in PAIRS]
    if task == "causal-lm":
        encoded = encode_causal(inputs, outputs, tokenizer, template=None, max_length=32)
    else:
        encoded = encode_seq2seq(
            inputs, outputs, tokenizer, template=None, max_length=32, max_target_length=8
        )
    rows = [
        {k: encoded[k][i] for k in ("input_ids", "attention_mask", "labels")}
        for i in range(len(PAIRS))
    ]
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)(rows)


@pytest.fixture(scope="module")
def wide_lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hidden 64: bitsandbytes' CPU 4-bit kernels need input sizes that are multiples of 64."""
    return {
        "gpt2": save_tiny_gpt2(tmp_path_factory.mktemp("wide-gpt2"), wide=True),
        "t5": save_tiny_t5(tmp_path_factory.mktemp("wide-t5"), wide=True),
    }


CASES = [
    ("lora", {}, {}),
    ("lora", {}, {"add_tokens": "<answer>,<stop>"}),
    ("qlora", {}, {}),
    ("ia3", {}, {}),
    ("prompt_tuning", {"num_virtual_tokens": 4}, {}),
    ("p_tuning", {"num_virtual_tokens": 4, "encoder_hidden_size": 16}, {}),
]


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
@pytest.mark.parametrize(
    ("technique_id", "params", "model_params"),
    CASES,
    ids=["lora", "lora-new-tokens", "qlora", "ia3", "prompt_tuning", "p_tuning"],
)
def test_technique_trains_saves_and_reloads_on_a_language_model(
    technique_id, params, model_params, arch, tiny_lms, wide_lms, tmp_path
):
    import torch

    from sdk import count_parameters
    from sdk.hf import load_base_model
    from sdk.textgen import generate_texts

    folder = (wide_lms if technique_id == "qlora" else tiny_lms)[arch]
    model_handle = plugin(
        "model", REPO / "plugins/models" / arch, {"name_or_path": str(folder), **model_params}
    )
    technique = plugin("technique", REPO / "plugins/techniques" / technique_id, params)
    task = TASKS[arch]
    loaded, tctx = load_base_model(model_handle, technique, task, [])
    model = technique.instance.apply(loaded.model, tctx)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total
    batch = training_batch(loaded.tokenizer, task)

    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    model.train()
    for _ in range(2):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    moved = [
        n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])
    ]
    assert moved, "no trainable parameter moved"
    with torch.no_grad():
        expected = model(**batch).logits

    technique.instance.save(model, tmp_path / "adapter", tctx)
    fresh, fresh_ctx = load_base_model(model_handle, technique, task, [])
    reloaded = technique.instance.load(fresh.model, tmp_path / "adapter", fresh_ctx).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**batch).logits, expected)
    texts = generate_texts(
        reloaded, fresh.tokenizer, [p for p, _ in PAIRS[:2]], task, max_new_tokens=3
    )
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)

    if model_params.get("add_tokens"):
        ids = fresh_ctx.new_token_ids
        assert len(ids) == 2 and ids == loaded.tokenizer.convert_tokens_to_ids(
            ["<answer>", "<stop>"]
        )
        # the new rows trained (they start as the mean of the old rows) and were saved
        assert any("trainable_tokens" in n for n in moved)
        pristine, _ = load_base_model(model_handle, technique, task, [])
        with torch.no_grad():
            rows = reloaded.get_input_embeddings()(torch.tensor(ids))
            start = pristine.model.get_input_embeddings()(torch.tensor(ids))
        assert not torch.allclose(rows, start)


# --- the pieces: loss masking, ROUGE, datasets ---


def test_causal_examples_learn_only_the_completion(tiny_lms):
    from transformers import AutoTokenizer

    from sdk.textgen import IGNORE_INDEX, encode_causal

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lms["gpt2"]))
    template = "Q: {input}\nA: "
    encoded = encode_causal(
        ["What is 7 plus 5?"], ["12"], tokenizer, template=template, max_length=64
    )
    ids, labels = encoded["input_ids"][0], encoded["labels"][0]
    prompt = tokenizer("Q: What is 7 plus 5?\nA: ")["input_ids"]
    completion = tokenizer("12", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert ids == prompt + completion
    assert labels == [IGNORE_INDEX] * len(prompt) + completion
    assert encoded["length"] == [len(ids)]

    # too long: the completion keeps half the room, the prompt loses its start
    long = encode_causal(["word " * 40], ["answer " * 40], tokenizer, template=None, max_length=16)
    ids, labels = long["input_ids"][0], long["labels"][0]
    assert len(ids) == 16 and labels[:8] == [IGNORE_INDEX] * 8
    assert all(label != IGNORE_INDEX for label in labels[8:])


def test_padding_in_a_batch_is_not_learned(tiny_lms):
    from transformers import AutoTokenizer

    from sdk.hf import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_lms["gpt2"]))
    assert tokenizer.pad_token == tokenizer.eos_token  # GPT-2 pads with its end token
    batch = training_batch(tokenizer, "causal-lm")
    padded = batch["attention_mask"] == 0
    assert padded.any() and (batch["labels"][padded] == -100).all()
    t5 = AutoTokenizer.from_pretrained(str(tiny_lms["t5"]))
    batch = training_batch(t5, "seq2seq")
    assert (batch["labels"][:, -1] != -100).any()  # the longest target ends in EOS ...
    assert set(batch["labels"][batch["labels"] != -100].tolist()) >= {t5.eos_token_id}


def test_rouge_scores():
    from sdk.textgen import rouge_scores

    same = rouge_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert same == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    none = rouge_scores(["dogs bark"], ["the cat sat"])
    assert none == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    # "the cat" vs "the cat sat": P 1, R 2/3 -> F 0.8; bigrams: P 1, R 1/2 -> F 2/3
    part = rouge_scores(["the cat", "x"], ["the cat sat", "y"])
    assert part["rouge1"] == pytest.approx(0.4) and part["rouge2"] == pytest.approx(1 / 3)


def dataset_context(dataset_id: str, params: dict[str, Any]) -> Any:
    from kernel.discovery import BundleLocation
    from kernel.params import complete_params
    from kernel.registry import read_bundle
    from sdk import DatasetContext

    folder = REPO / "plugins/datasets" / dataset_id
    bundle = read_bundle(BundleLocation(folder, "builtin", 0))
    section = bundle.manifest.dataset
    ctx = DatasetContext(
        params=complete_params(bundle.manifest, params),
        bundle_dir=folder,
        task=section.task,
        label_names=[],
        text_fields=list(section.text_fields),
        label_field=section.label_field,
    )
    return bundle.instantiate(), ctx


def test_shipped_datasets_load_offline():
    instructions, ctx = dataset_context("instructions", {})
    splits = instructions.load(ctx)
    assert splits.task == "causal-lm" and splits.train.column_names == ["prompt", "completion"]
    assert (len(splits.train), len(splits.validation)) == (42, 12)
    assert splits.input_template == "### Instruction:\n{input}\n\n### Response:\n"
    assert splits.max_length == 128

    summaries, ctx = dataset_context("summaries", {"train_samples": 10})
    splits = summaries.load(ctx)
    assert splits.task == "seq2seq" and splits.train.column_names == ["source", "target"]
    assert (len(splits.train), len(splits.validation)) == (10, 8)
    assert (splits.input_template, splits.max_target_length) == ("summarize: {input}", 64)


def test_own_jsonl_file_with_other_column_names(tmp_path):
    from sdk.data import DataColumnError

    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)]
    rows.append({"question": "", "answer": "dropped"})
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = {"path": str(path), "prompt_field": "question", "completion_field": "answer"}
    instructions, ctx = dataset_context("instructions", {**params, "validation_fraction": 0.2})
    splits = instructions.load(ctx)
    assert (len(splits.train), len(splits.validation)) == (8, 2)
    assert set(splits.train["prompt"]) | set(splits.validation["prompt"]) == {
        f"q{i}" for i in range(10)
    }
    assert any("dropped 1 row" in note for note in splits.notes)
    assert any("held out 2 of 10" in note for note in splits.notes)

    instructions, ctx = dataset_context("instructions", {"path": str(path)})
    with pytest.raises(DataColumnError, match="no input column 'prompt'"):
        instructions.load(ctx)


def test_generation_bundles_in_the_capability_graph(kernel):
    graph = kernel.graph()
    expected = {"lora", "qlora", "ia3", "prefix_tuning", "prompt_tuning", "p_tuning", "full"}
    for model, dataset in (("gpt2", "instructions"), ("t5", "summaries")):
        options = graph.options("technique", {"model": model, "dataset": dataset})
        assert expected <= {technique for technique, why_not in options.items() if not why_not}
        assert "adapter" in options and options["adapter"]  # encoder-only: refused, with a reason
    assert graph.check({"model": "gpt2", "dataset": "summaries"})  # seq2seq data, causal model


def test_qlora_trains_a_causal_lm_through_the_engine(kernel, tmp_path, wide_lms):
    """On the CPU the evaluation before training is skipped: bitsandbytes repacks the 4-bit
    weights for inference on the first no-grad pass, and training fails after it."""
    run = make_run(kernel, tmp_path, "gpt2", wide_lms["gpt2"], "qlora")
    results = execute(run)
    check_generation_results(results, "qlora", "gpt2")
    assert results["trainable_params"] == 4 * 2 * 8 * 64  # 4 L r d: c_attn is d x 3d
    if results["device"] == "cpu":
        assert results["baseline_perplexity"] is None
