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


@pytest.mark.parametrize("init", ["gaussian", "pissa", "olora"])
def test_initialisations_keep_the_contract(init, make_setup, contract, tmp_path):
    setup = make_setup("lora", "bert", {"init_lora_weights": init})
    assert setup.technique.config(setup.ctx).init_lora_weights == init
    model = contract(setup, tmp_path, peft_based=True)
    assert model.peft_config["default"].init_lora_weights == init


@pytest.mark.parametrize("init", ["eva", "corda"])
@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_data_driven_initialisations_keep_the_contract(init, arch, make_setup, contract, tmp_path):
    setup = make_setup("lora", arch, {"init_lora_weights": init}, calibrated=True)
    model = contract(setup, tmp_path, peft_based=True)
    assert model.peft_config["default"].init_lora_weights == init


def test_eva_starts_a_from_the_inputs_singular_vectors_and_keeps_the_rank_budget(make_setup):
    import torch

    setup = make_setup("lora", "bert", {"init_lora_weights": "eva", "r": 4}, calibrated=True)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    a_matrices = {n: p for n, p in model.named_parameters() if "lora_A" in n}
    for a in a_matrices.values():  # rows: orthonormal principal directions of the inputs
        torch.testing.assert_close(a @ a.T, torch.eye(len(a)), atol=1e-4, rtol=0)
    # ranks move between layers (up to eva_rho x r), their sum stays r per adapted layer
    assert sum(len(a) for a in a_matrices.values()) == 4 * len(a_matrices)
    with model.disable_adapter():  # B = 0: the body computes what the base does
        expected = model(**setup.batch).logits
    torch.testing.assert_close(model(**setup.batch).logits, expected)


def test_eva_with_rho_one_keeps_every_layer_at_r(make_setup):
    params = {"init_lora_weights": "eva", "r": 4, "eva_rho": 1.0}
    setup = make_setup("lora", "distilbert", params, calibrated=True)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    ranks = {len(p) for n, p in model.named_parameters() if "lora_A" in n}
    assert ranks == {4}


@pytest.mark.parametrize("init", ["eva", "corda"])
def test_data_driven_initialisations_need_calibration_examples(init, make_setup):
    setup = make_setup("lora", "bert", {"init_lora_weights": init})  # a context without any
    with pytest.raises(ValueError, match=f"init_lora_weights={init} needs calibration examples"):
        setup.technique.apply(setup.fresh_base(), setup.ctx)


@pytest.mark.parametrize("init", ["pissa", "olora", "corda"])
def test_residual_initialisations_move_the_base_and_save_a_plain_lora(init, make_setup, tmp_path):
    import json

    import torch

    setup = make_setup("lora", "distilbert", {"init_lora_weights": init, "r": 4}, calibrated=True)
    base = setup.fresh_base()
    original = base.distilbert.transformer.layer[0].attention.q_lin.weight.detach().clone()
    model = setup.technique.apply(base, setup.ctx)
    residual = model.base_model.model.distilbert.transformer.layer[0].attention.q_lin.base_layer
    assert not torch.allclose(residual.weight, original)  # the principal part moved into B A
    setup.technique.save(model, tmp_path / "adapter", setup.ctx)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 8 and saved["init_lora_weights"] is True  # converted: rank 2r


def test_default_initialisation_leaves_the_model_unchanged(make_setup):
    import torch

    setup = make_setup("lora", "roberta", {"init_lora_weights": "default"})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    assert setup.technique.config(setup.ctx).init_lora_weights is True
    # B = 0: only the new head differs, so the body's output is the base's
    with model.disable_adapter():
        expected = model(**setup.batch).logits
    torch.testing.assert_close(model(**setup.batch).logits, expected)


def test_loraplus_trains_b_faster_than_a(make_setup, tmp_path):
    from transformers import TrainingArguments

    setup = make_setup("lora", "bert", {"loraplus_lr_ratio": 16.0})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, weight_decay=0.01)
    optimizer = setup.technique.create_optimizer(model, args, setup.ctx)
    rates = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            rates[id(param)] = group["lr"]
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert set(rates) == {id(p) for p in named.values()}  # every trainable parameter, once
    assert {rates[id(p)] for n, p in named.items() if "lora_A" in n} == {1e-3}
    assert {rates[id(p)] for n, p in named.items() if "lora_B" in n} == {16e-3}
    assert type(optimizer).__name__ == "AdamW"


def test_plain_lora_leaves_the_optimizer_to_the_trainer(make_setup, tmp_path):
    from transformers import TrainingArguments

    setup = make_setup("lora", "bert")
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    args = TrainingArguments(output_dir=str(tmp_path))
    assert setup.technique.create_optimizer(model, args, setup.ctx) is None


@pytest.mark.parametrize("init", ["eva", "corda"])
def test_data_driven_initialisations_keep_the_contract_on_a_decoder(
    init, technique_bundle, lm_context, generation_contract, tmp_path
):
    """Tiny LLaMA, causal-lm: per-token labels whose padding (-100) EVA leaves out."""
    from dataclasses import replace

    import torch

    manifest, technique = technique_bundle("lora")
    torch.manual_seed(3)
    ids = torch.randint(3, 100, (8, 12))
    mask = torch.ones_like(ids)
    mask[::2, 8:] = 0  # every other example padded after 8 tokens
    batch = {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}
    ctx = lm_context(manifest, "llama", {"init_lora_weights": init, "r": 4}, tmp_path)
    generation_contract(
        technique, replace(ctx, calibration=lambda: [batch, batch]), "llama", tmp_path
    )
