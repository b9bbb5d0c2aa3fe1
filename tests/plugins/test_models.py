"""The model bundles (minilm, bert, distilbert, roberta) and sdk.hf's shared loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from kernel.discovery import BundleLocation
from kernel.params import complete_params
from kernel.registry import read_bundle
from sdk import ModelContext, ModelFacts
from sdk.hf import ModelLoadError, footprint_bytes
from sdk.validate import errors_only, validate_bundle

MODELS = Path(__file__).resolve().parents[2] / "plugins" / "models"
LABELS = ["negative", "neutral", "positive"]


def context(bundle_id: str, **params: Any) -> tuple[Any, ModelContext]:
    bundle = read_bundle(BundleLocation(MODELS / bundle_id, "builtin", 0))
    manifest = bundle.manifest
    ctx = ModelContext(
        params=complete_params(manifest, params),
        bundle_dir=MODELS / bundle_id,
        facts=ModelFacts.from_manifest_section(manifest.model.model_dump(mode="json")),
        task="sequence-classification",
        num_labels=len(LABELS),
        label_names=LABELS,
    )
    return bundle.instantiate(), ctx


@pytest.mark.parametrize("bundle_id", ["minilm", "bert", "distilbert", "roberta"])
def test_bundle_validates(bundle_id):
    assert errors_only(validate_bundle(MODELS / bundle_id)) == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_loads_a_local_folder_with_the_labels(arch, tiny_models):
    provider, ctx = context(arch, name_or_path=str(tiny_models[arch]))
    loaded = provider.load(ctx)
    assert loaded.model.config.model_type == arch
    assert loaded.model.config.id2label == dict(enumerate(LABELS))
    assert loaded.model.config.label2id["positive"] == 2
    batch = loaded.tokenizer(["a fine film", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**batch).logits
    assert logits.shape == (2, 3)
    # the classifier modules the manifest names exist in the loaded model
    names = {name for name, _ in loaded.model.named_modules()}
    assert all(any(n.endswith(m) for n in names) for m in ctx.facts.classifier_modules)
    assert provider.load_tokenizer(ctx).vocab_size == loaded.tokenizer.vocab_size


def test_minilm_uses_the_embedded_weights():
    provider, ctx = context("minilm")
    source = Path(provider.source(ctx))
    assert (source / "model.safetensors").is_file()
    loaded = provider.load(ctx)
    assert loaded.model.config.num_hidden_layers == 6
    assert loaded.model.num_parameters() == pytest.approx(22.7e6, rel=0.01)
    assert footprint_bytes(loaded.model) > 4 * 22e6


def test_minilm_name_or_path_overrides(tiny_models):
    provider, ctx = context("minilm", name_or_path=str(tiny_models["bert"]))
    assert provider.source(ctx) == str(tiny_models["bert"])
    assert provider.load(ctx).model.config.hidden_size == 32


def test_missing_folder_is_named(tmp_path):
    provider, ctx = context("bert", name_or_path=str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match=r"nowhere' does not exist"):
        provider.load(ctx)


def test_folder_without_config_is_named(tmp_path):
    (tmp_path / "weights").mkdir()
    provider, ctx = context("roberta", name_or_path=str(tmp_path / "weights"))
    with pytest.raises(ModelLoadError, match="weights' has no config.json"):
        provider.load(ctx)


def test_unreachable_hub_id_is_named(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    provider, ctx = context("distilbert", name_or_path="no-such-org/no-such-model")
    with pytest.raises(ModelLoadError, match="'no-such-org/no-such-model'.*hub is unreachable"):
        provider.load(ctx)


def test_pickle_weights_are_not_loaded(tiny_models, tmp_path):
    """Only safetensors: a folder holding just pytorch_model.bin is refused."""
    import shutil

    from transformers import AutoModel

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["bert"], folder)
    state = AutoModel.from_pretrained(str(folder)).state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    provider, ctx = context("bert", name_or_path=str(folder))
    assert provider.load_tokenizer(ctx) is not None  # the folder itself is fine
    with pytest.raises(ModelLoadError, match="pickled"):
        provider.load(ctx)
