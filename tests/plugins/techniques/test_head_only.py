"""Head-only training: only the classifier head (and optionally the top layers) trains."""

import pytest

from sdk.validate import validate_bundle

ENCODERS = ["bert", "distilbert", "roberta"]


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "head_only") == []


@pytest.mark.parametrize("arch", ENCODERS)
def test_contract_head_only(arch, make_setup, contract, tmp_path):
    model = contract(make_setup("head_only", arch), tmp_path, peft_based=False, body_trains=False)
    heads = make_setup("head_only", arch).ctx.facts.classifier_modules
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(heads)


@pytest.mark.parametrize("arch", ["distilbert"])
def test_contract_with_the_last_layer(arch, make_setup, contract, tmp_path):
    setup = make_setup("head_only", arch, {"unfreeze_last_layers": 1})
    model = contract(setup, tmp_path, peft_based=False)
    layers = {
        n.split(".layer.")[1].split(".")[0]
        for n, p in model.named_parameters()
        if p.requires_grad and ".layer." in n
    }
    assert layers == {"1"}


def test_more_layers_than_the_model_has_trains_all_of_them(make_setup):
    setup = make_setup("head_only", "bert", {"unfreeze_last_layers": 10})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    layers = {
        n.split(".layer.")[1].split(".")[0]
        for n, p in model.named_parameters()
        if p.requires_grad and ".layer." in n
    }
    assert layers == {"0", "1"}
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
