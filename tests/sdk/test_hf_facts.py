"""Facts of any transformers model derived from its config: tasks, layer kinds, modules, heads."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk import hf_facts
from sdk.hf import ModelLoadError
from sdk.testing import build_tiny_family


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    names = ("llama", "gpt2", "deberta-v2", "t5", "distilbert")
    return {f: build_tiny_family(tmp_path_factory.mktemp(f"tiny-{f}"), f) for f in names}


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(hf_facts, "_CACHE", {})


def test_a_decoder_serves_causal_lm_and_classification(families) -> None:
    facts = hf_facts.derive_facts(str(families["llama"]))
    assert facts.architecture == "llama"
    assert facts.tasks == ["sequence-classification", "causal-lm"]
    assert facts.layer_kinds == ["linear"]
    assert facts.attention_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert facts.feedforward_modules == ["gate_proj", "up_proj", "down_proj"]
    assert facts.default_target_modules == ["q_proj", "v_proj"]  # peft's for llama
    assert facts.classifier_modules == ["score"]
    assert set(facts.provides) == {"quantizable", "past-key-values"}


def test_layer_kinds_and_names_come_from_the_modules(families) -> None:
    gpt2 = hf_facts.derive_facts(str(families["gpt2"]))
    assert gpt2.layer_kinds == ["conv1d"]
    # c_proj is in attention and MLP: each named by the shortest unambiguous suffix
    assert gpt2.attention_modules == ["c_attn", "attn.c_proj"]
    assert gpt2.feedforward_modules == ["c_fc", "mlp.c_proj"]
    distilbert = hf_facts.derive_facts(str(families["distilbert"]))
    assert distilbert.default_target_modules == ["q_lin", "v_lin"]  # peft knows none
    assert distilbert.classifier_modules == ["pre_classifier", "classifier"]


def test_encoders_and_encoder_decoders(families) -> None:
    deberta = hf_facts.derive_facts(str(families["deberta-v2"]))
    assert deberta.tasks == ["sequence-classification"]  # its causal-LM head is not a chat model
    assert "past-key-values" not in deberta.provides  # attention outside the interface
    t5 = hf_facts.derive_facts(str(families["t5"]))
    assert (t5.tasks, t5.classifier_modules) == (["seq2seq"], [])
    assert t5.attention_modules == ["q", "k", "v", "o"]


def test_facts_are_cached_by_config_hash(families, monkeypatch: pytest.MonkeyPatch) -> None:
    first = hf_facts.derive_facts(str(families["llama"]))
    monkeypatch.setattr(hf_facts, "_CACHE", {})  # a new process: only the disk cache is left

    def never(config):
        raise AssertionError("derived again despite the cache")

    monkeypatch.setattr(hf_facts, "facts_from_config", never)
    assert hf_facts.derive_facts(str(families["llama"])) == first


def test_an_unreadable_model_names_the_source(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="has no config.json"):
        hf_facts.derive_facts(str(tmp_path))
