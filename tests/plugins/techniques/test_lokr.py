"""Contract of the lokr technique bundle on tiny BERT, DistilBERT and RoBERTa."""

import pytest

from sdk.validate import validate_bundle


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "lokr") == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("lokr", arch), tmp_path, peft_based=True)
