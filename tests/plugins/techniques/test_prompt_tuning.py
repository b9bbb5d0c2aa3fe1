"""Contract of the prompt_tuning technique bundle (random and text initialisation)."""

import pytest

from sdk.validate import validate_bundle


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "prompt_tuning") == []


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract(arch, make_setup, contract, tmp_path):
    contract(make_setup("prompt_tuning", arch), tmp_path, peft_based=True)


def test_text_init_uses_the_model_tokenizer(make_setup, tokenizer, tmp_path):
    """init: text embeds init_text with the tokenizer found at ctx.model_name_or_path."""
    import torch

    tokenizer.save_pretrained(str(tmp_path / "tok"))
    setup = make_setup(
        "prompt_tuning",
        "bert",
        {"init": "text", "init_text": "great or awful", "num_virtual_tokens": 3},
        model_name_or_path=str(tmp_path / "tok"),
    )
    base = setup.fresh_base()
    # peft embeds the text as the tokenizer encodes it, special tokens included, cut to length
    ids = tokenizer("great or awful")["input_ids"][:3]
    words = base.get_input_embeddings().weight[ids]
    model = setup.technique.apply(base, setup.ctx)
    prompt = model.prompt_encoder["default"].embedding.weight
    torch.testing.assert_close(prompt.detach(), words.detach())


def test_text_init_without_a_tokenizer_says_so(make_setup):
    setup = make_setup("prompt_tuning", "distilbert", {"init": "text"})
    with pytest.raises(ValueError, match="tokenizer"):
        setup.technique.apply(setup.fresh_base(), setup.ctx)
