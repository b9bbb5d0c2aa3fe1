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
