"""Contract of the p_tuning technique bundle with both prompt encoders."""

import pytest

from sdk.validate import validate_bundle


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "p_tuning") == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("p_tuning", arch), tmp_path, peft_based=True)


def test_contract_with_an_lstm_encoder(make_setup, contract, tmp_path):
    params = {"encoder_reparameterization_type": "LSTM", "encoder_hidden_size": 16}
    contract(make_setup("p_tuning", "roberta", params), tmp_path, peft_based=True)
