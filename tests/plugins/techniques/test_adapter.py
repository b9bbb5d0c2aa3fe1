"""Bottleneck adapters: contract on tiny BERT, DistilBERT and RoBERTa, placement and identity start."""

import pytest
import torch

from sdk.validate import validate_bundle

ENCODERS = ["bert", "distilbert", "roberta"]


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "adapter") == []


@pytest.mark.parametrize(
    "arch, placement",
    [
        ("bert", "houlsby"),
        ("distilbert", "houlsby"),
        ("roberta", "houlsby"),
        ("distilbert", "pfeiffer"),
    ],
)
def test_contract(arch, placement, make_setup, contract, tmp_path):
    setup = make_setup("adapter", arch, {"placement": placement, "non_linearity": "gelu"})
    contract(setup, tmp_path, peft_based=False)


@pytest.mark.parametrize(
    "arch, placement, expected",
    [
        ("bert", "houlsby", {"attention.output.dense", "output.dense"}),
        ("bert", "pfeiffer", {"output.dense"}),
        ("distilbert", "houlsby", {"attention.out_lin", "ffn.lin2"}),
        ("distilbert", "pfeiffer", {"ffn.lin2"}),
    ],
)
def test_placement(arch, placement, expected, make_setup):
    setup = make_setup("adapter", arch, {"placement": placement, "reduction_factor": 8})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    places = {
        name.split(".layer.1.", 1)[1]
        for name, module in model.named_modules()
        if ".layer.1." in name and hasattr(module, "peftlab_adapter")
    }
    assert places == expected
    adapter = next(m.peftlab_adapter for m in model.modules() if hasattr(m, "peftlab_adapter"))
    assert adapter.down.out_features == 32 // 8


@pytest.mark.parametrize("non_linearity", ["relu", "gelu", "tanh", "swish"])
def test_a_new_adapter_is_the_identity(non_linearity, make_setup):
    setup = make_setup("adapter", "roberta", {"non_linearity": non_linearity})
    expected = setup.logits(setup.fresh_base())
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    torch.testing.assert_close(setup.logits(model), expected)


def test_load_refuses_weights_of_another_structure(make_setup, tmp_path):
    setup = make_setup("adapter", "bert", {"placement": "houlsby"})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    setup.technique.save(model, tmp_path, setup.ctx)
    other = make_setup("adapter", "distilbert")
    with pytest.raises(ValueError, match="do not exist in the rebuilt model"):
        other.technique.load(other.fresh_base(), tmp_path, other.ctx)
