"""Encoder prefix tuning: contract on tiny BERT, DistilBERT and RoBERTa, and its attention math."""

import pytest
import torch

from sdk.validate import validate_bundle

ENCODERS = ["bert", "distilbert", "roberta"]


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "prefix_tuning") == []


@pytest.mark.parametrize("arch", ENCODERS)
def test_contract(arch, make_setup, contract, tmp_path):
    model = contract(make_setup("prefix_tuning", arch), tmp_path, peft_based=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if n.startswith("peftlab_prefix.")} == {"peftlab_prefix.prefix"}


@pytest.mark.parametrize("arch", ["roberta"])
def test_contract_with_the_projection(arch, make_setup, contract, tmp_path):
    params = {"prefix_projection": True, "projection_hidden_size": 16, "num_virtual_tokens": 3}
    contract(make_setup("prefix_tuning", arch, params), tmp_path, peft_based=False)


def test_the_adapter_folder_is_documented_and_small(make_setup, tmp_path):
    import json

    setup = make_setup("prefix_tuning", "bert", {"num_virtual_tokens": 5})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    setup.technique.save(model, tmp_path, setup.ctx)
    config = json.loads((tmp_path / "technique_config.json").read_text())
    assert config["technique"] == "prefix_tuning"
    assert config["params"]["num_virtual_tokens"] == 5
    assert config["tensors"] == [
        "classifier.bias",
        "classifier.weight",
        "peftlab_prefix.prefix",
    ]


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_self_attention_matches_a_by_hand_computation(implementation, make_setup):
    """One BERT self-attention layer with prefixes equals softmax(q [pk; k]^T) [pv; v]."""
    setup = make_setup("prefix_tuning", "bert", {"num_virtual_tokens": 3})
    base = setup.fresh_base()
    base.set_attn_implementation(implementation)
    model = setup.technique.apply(base, setup.ctx)
    attention = model.bert.encoder.layer[1].attention.self
    hidden = torch.randn(2, 5, 32)
    with torch.no_grad():
        out = attention(hidden)[0]
        prefix_key, prefix_value = model.peftlab_prefix(1)

        def heads(x):  # (batch, length, 32) -> (batch, 2 heads, length, 16)
            return x.view(x.shape[0], -1, 2, 16).transpose(1, 2)

        q = heads(attention.query(hidden))
        k = heads(torch.cat([prefix_key.expand(2, -1, -1), attention.key(hidden)], dim=1))
        v = heads(torch.cat([prefix_value.expand(2, -1, -1), attention.value(hidden)], dim=1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1)
        expected = (weights @ v).transpose(1, 2).reshape(2, 5, 32)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_eager_and_sdpa_agree_with_padding(make_setup):
    setup = make_setup("prefix_tuning", "roberta", {"num_virtual_tokens": 4})
    logits = []
    for implementation in ("eager", "sdpa"):
        base = setup.fresh_base()
        base.set_attn_implementation(implementation)
        torch.manual_seed(0)
        logits.append(setup.logits(setup.technique.apply(base, setup.ctx)))
    torch.testing.assert_close(logits[0], logits[1], atol=1e-5, rtol=1e-4)


def test_padding_stays_invisible(make_setup):
    """Padding tokens stay invisible: appending padding does not change a sequence's logits."""
    setup = make_setup("prefix_tuning", "distilbert", {"num_virtual_tokens": 4})
    model = setup.technique.apply(setup.fresh_base(), setup.ctx)
    ids = setup.batch["input_ids"][-1:]  # the shortest text, padded to the longest
    mask = setup.batch["attention_mask"][-1:]
    length = int(mask.sum())
    with torch.no_grad():
        short = model(input_ids=ids[:, :length], attention_mask=mask[:, :length]).logits
        padded = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-4)
