"""Contract of the ia3 technique bundle on tiny BERT, DistilBERT and RoBERTa."""

import pytest

from sdk.validate import validate_bundle

# per architecture: the modules IA3 must rescale in layer 0, and which of them are feed-forward
EXPECTED = {
    "bert": ({"attention.self.key", "attention.self.value", "output.dense"}, {"output.dense"}),
    "roberta": ({"attention.self.key", "attention.self.value", "output.dense"}, {"output.dense"}),
    "distilbert": ({"attention.k_lin", "attention.v_lin", "ffn.lin2"}, {"ffn.lin2"}),
}


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "ia3") == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("ia3", arch), tmp_path, peft_based=True)


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_auto_targets_keys_values_and_feedforward_output(arch, make_setup):
    from peft.tuners.ia3 import IA3Layer

    setup = make_setup("ia3", arch)
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    adapted = {
        name.split(".layer.0.", 1)[1]: module
        for name, module in model.named_modules()
        if isinstance(module, IA3Layer) and ".layer.0." in name
    }
    targets, feedforward = EXPECTED[arch]
    assert set(adapted) == targets  # notably not BERT's attention.output.dense
    assert {name for name, m in adapted.items() if m.is_feedforward} == feedforward


def test_explicit_feedforward_must_be_targeted(make_setup):
    setup = make_setup(
        "ia3", "distilbert", {"target_modules": ["k_lin", "v_lin"], "feedforward_modules": ["lin2"]}
    )
    with pytest.raises(ValueError, match="not in target_modules"):
        setup.technique.apply(setup.fresh_base(), setup.ctx)
