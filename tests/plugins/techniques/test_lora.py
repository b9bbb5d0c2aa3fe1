"""Contract of the lora technique bundle on tiny BERT, DistilBERT and RoBERTa."""

import pytest

from sdk.validate import errors_only, validate_bundle


def test_bundle_validates(techniques_root):
    assert errors_only(validate_bundle(techniques_root / "lora")) == []


def test_recommended_learning_rate(make_setup):
    assert make_setup("lora", "bert").technique.default_learning_rate == 2e-3


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("lora", arch), tmp_path, peft_based=True)


@pytest.mark.parametrize(
    "arch, targets", [("bert", {"query", "value"}), ("distilbert", {"q_lin", "v_lin"})]
)
def test_auto_targets_and_trained_heads(arch, targets, make_setup):
    setup = make_setup("lora", arch)
    config = setup.technique.config(setup.ctx)
    assert set(config.target_modules) == targets
    # every classifier module the model declares trains and is saved (DistilBERT: pre_classifier too)
    assert set(setup.ctx.facts.classifier_modules) <= set(config.modules_to_save)
    assert config.task_type == "SEQ_CLS"


def test_options_reach_peft(make_setup):
    setup = make_setup(
        "lora",
        "bert",
        {
            "r": 4,
            "alpha": 8,
            "dropout": 0.0,
            "target_modules": ["query", "key"],
            "use_rslora": True,
            "use_dora": True,
            "bias": "lora_only",
        },
    )
    config = setup.technique.config(setup.ctx)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.0)
    assert set(config.target_modules) == {"query", "key"}
    assert config.use_rslora and config.use_dora and config.bias == "lora_only"
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    assert any("lora_magnitude_vector" in name for name, _ in model.named_parameters())


def test_dora_contract(make_setup, contract, tmp_path):
    contract(make_setup("lora", "roberta", {"use_dora": True}), tmp_path, peft_based=True)
