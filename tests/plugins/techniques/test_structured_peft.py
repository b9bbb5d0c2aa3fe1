"""Contract of peft's orthogonal, spectral and structured methods as bundles.

OFT, BOFT, LN tuning, FourierFT, HRA, VB-LoRA and MiSS are each one peft config
whose fields the manifest's params are named after; these tests check them
on tiny BERT, DistilBERT and RoBERTa classifiers and tiny language models, and
that the manifests still say what peft's config says (names, defaults, help).
"""

import dataclasses
import re

import pytest

from sdk.validate import validate_bundle

BUNDLES = ["oft", "boft", "ln_tuning", "fourierft", "hra", "vblora", "miss"]
# the tiny models are 32 wide (37 in the feed-forward layers): settings that fit them
TINY = {
    "vblora": {"vector_length": 16},
    "miss": {"r": 8},
    "fourierft": {"n_frequency": 64},
}


@pytest.mark.parametrize("technique_id", BUNDLES)
def test_bundle_validates(technique_id, techniques_root):
    assert validate_bundle(techniques_root / technique_id) == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
@pytest.mark.parametrize("technique_id", BUNDLES)
def test_contract_on_encoders(technique_id, arch, make_setup, contract, tmp_path):
    contract(make_setup(technique_id, arch, TINY.get(technique_id)), tmp_path, peft_based=True)


# language models each bundle adapts: GPT-2's Conv1D only where peft supports it
LANGUAGE_MODELS = {
    "oft": ["llama", "t5"],
    "boft": ["llama", "t5"],
    "ln_tuning": ["gpt2", "llama", "t5"],
    "fourierft": ["gpt2", "llama", "t5"],
    "hra": ["llama", "t5"],
    "vblora": ["gpt2", "llama", "t5"],
    "miss": ["llama", "t5"],
}


@pytest.mark.parametrize(
    "technique_id, arch", [(t, a) for t, archs in LANGUAGE_MODELS.items() for a in archs]
)
def test_contract_on_language_models(
    technique_id, arch, technique_bundle, lm_context, generation_contract, tmp_path
):
    manifest, technique = technique_bundle(technique_id)
    ctx = lm_context(manifest, arch, TINY.get(technique_id, {}), tmp_path)
    assert ctx.task in manifest.requires.tasks
    generation_contract(technique, ctx, arch, tmp_path)


@pytest.mark.parametrize("technique_id", ["oft", "boft", "hra", "miss"])
def test_linear_only_methods_refuse_gpt2(
    technique_id, technique_bundle, lm_context, tiny_lm, tmp_path
):
    """peft adapts only nn.Linear with these methods: the graph refuses GPT-2 (Conv1D) with
    its reason, and peft itself would too."""
    from kernel.capabilities import model_misfits
    from kernel.config import BUILTIN_PLUGINS
    from kernel.manifest import load_manifest

    manifest, technique = technique_bundle(technique_id)
    gpt2 = load_manifest(BUILTIN_PLUGINS / "models" / "gpt2" / "plugin.yaml")
    assert model_misfits(manifest, gpt2) == [
        f"{technique_id}: adapts linear layers; model gpt2's layers are conv1d"
    ]
    ctx = lm_context(manifest, "gpt2", TINY.get(technique_id, {}), tmp_path)
    with pytest.raises(TypeError, match="Conv1D"):
        technique.apply(tiny_lm("gpt2"), ctx)


# manifest param -> peft field, where the manifest cannot use peft's name (lowercase identifiers)
RENAMED = {("hra", "apply_gs"): "apply_GS"}
# defaults that differ from peft's on purpose, and why
OWN_DEFAULTS = {
    ("vblora", "vector_length"): "peft's 256 does not divide MiniLM's 384",
    ("miss", "init_weights"): "a named choice for peft's True",
    ("ln_tuning", "target_modules"): "empty = every norm layer, found in the model",
}
# help that is not peft's first sentence, and why
OWN_HELP = {
    ("miss", "init_weights"): "peft's help runs two sentences together without a space",
    ("ln_tuning", "target_modules"): "peftlab finds the norm layers itself",
}


def first_sentence(text: str) -> str:
    """The first sentence of a peft help text, whitespace collapsed."""
    text = " ".join(str(text).split())
    end = re.search(r"(?<=[a-z0-9)\]`'])\.(\s|[A-Z])", text)
    return text if end is None else text[: end.start() + 1]


def peft_fields(technique) -> dict:
    import peft

    return {f.name: f for f in dataclasses.fields(getattr(peft, technique.peft_config_name))}


def manifest_params(technique_id, technique_bundle):
    manifest, technique = technique_bundle(technique_id)
    fields = peft_fields(technique)
    for name, spec in manifest.params.items():
        if name == "target_modules" and (technique_id, name) not in OWN_DEFAULTS:
            continue  # peftlab's own auto targets, the same in every bundle
        yield name, spec, fields[RENAMED.get((technique_id, name), name)]


@pytest.mark.parametrize("technique_id", BUNDLES)
def test_manifest_params_are_peft_config_fields(technique_id, technique_bundle):
    """Names, defaults and help follow peft's config dataclass (a drift check on upgrades)."""
    for name, spec, peft_field in manifest_params(technique_id, technique_bundle):
        if (technique_id, name) not in OWN_DEFAULTS:
            assert spec.default == peft_field.default, (name, spec.default, peft_field.default)
        if (technique_id, name) not in OWN_HELP:
            help_text = first_sentence(peft_field.metadata["help"])
            assert spec.help.startswith(help_text), (name, spec.help, help_text)


@pytest.mark.parametrize("technique_id", BUNDLES)
def test_every_param_reaches_the_peft_config(technique_id, make_setup):
    """Each param, set away from its default, arrives in the config peft gets."""
    setup = make_setup(technique_id, "bert", TINY.get(technique_id))
    changed = {}
    for name, spec in setup.manifest.params.items():
        if spec.type == "bool":
            changed[name] = not spec.default
        elif spec.type == "choice":
            changed[name] = next(o for o in spec.options if o != spec.default)
        elif spec.type == "int" and name not in TINY.get(technique_id, {}):
            changed[name] = spec.default + 1
        elif spec.type == "float":
            changed[name] = spec.default / 2 if spec.default else 0.5
    setup = make_setup(technique_id, "bert", {**TINY.get(technique_id, {}), **changed})
    config = setup.technique.peft_config(setup.fresh_base(), setup.ctx)
    assert config.task_type == "SEQ_CLS"
    for name, value in changed.items():
        got = getattr(config, RENAMED.get((technique_id, name), name))
        expected = (
            True if (technique_id, name, value) == ("miss", "init_weights", "balance") else value
        )
        assert got == expected, (name, got, expected)


@pytest.mark.parametrize(
    "arch, names",
    [
        ("bert", ["LayerNorm"]),
        ("distilbert", ["LayerNorm", "output_layer_norm", "sa_layer_norm"]),
    ],
)
def test_ln_tuning_finds_every_norm_layer(arch, names, make_setup):
    import torch

    setup = make_setup("ln_tuning", arch)
    base = setup.fresh_base()
    config = setup.technique.peft_config(base, setup.ctx)
    assert sorted(config.target_modules) == names
    norms = [m for m in base.modules() if isinstance(m, torch.nn.LayerNorm)]
    model = setup.technique.apply(base, setup.ctx)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    heads = {n for n in trained if "classifier" in n}
    # a gain and a bias per norm layer, nothing else besides the head
    assert len(trained - heads) == 2 * len(norms)
