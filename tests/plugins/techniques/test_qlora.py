"""QLoRA on CPU: 4-bit base from bitsandbytes, LoRA on top, smaller than the fp32 model."""

from pathlib import Path

import pytest

from sdk.validate import validate_bundle


def test_bundle_validates(techniques_root):
    assert validate_bundle(techniques_root / "qlora") == []


@pytest.fixture
def quantized_setup(make_setup, tiny_model, tmp_path):
    """A setup whose base is the tiny model saved to disk and reloaded in 4 bits."""
    from transformers import AutoModelForSequenceClassification

    def make(arch, params=None):
        setup = make_setup("qlora", arch, params)
        folder = tmp_path / f"{arch}-base"
        tiny_model(arch, wide=True).save_pretrained(str(folder))
        kwargs = setup.technique.model_load_kwargs(setup.ctx)

        def build():
            model = AutoModelForSequenceClassification.from_pretrained(str(folder), **kwargs)
            return model.eval()

        setup.build = build
        return setup

    return make


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
def test_contract_on_a_4bit_base(arch, quantized_setup, contract, tmp_path):
    import bitsandbytes as bnb

    setup = quantized_setup(arch)
    model = contract(setup, tmp_path, peft_based=True)
    heads = setup.ctx.facts.classifier_modules
    for name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            assert not any(h in name.split(".") for h in heads + ["pooler"]), name


def test_load_kwargs_keep_head_and_pooler_unquantized(make_setup):
    import torch

    setup = make_setup("qlora", "distilbert", {"quant_type": "fp4", "double_quant": False})
    kwargs = setup.technique.model_load_kwargs(setup.ctx)
    config = kwargs["quantization_config"]
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "fp4"
    assert not config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.float32
    assert len(config.llm_int8_skip_modules) == 3
    assert kwargs["device_map"] == ("cpu" if not torch.cuda.is_available() else {"": 0})


def test_weights_are_4bit_and_the_footprint_shrinks(quantized_setup, tiny_model):
    import bitsandbytes as bnb

    from sdk.peft_utils import parameter_bytes

    setup = quantized_setup("bert")
    quantized = setup.fresh_base()
    full = tiny_model("bert", wide=True)
    linear4 = [m for m in quantized.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linear4) == 2 * 6  # q, k, v, attention out, intermediate, output per layer
    assert not isinstance(quantized.classifier, bnb.nn.Linear4bit)
    assert not isinstance(quantized.bert.pooler.dense, bnb.nn.Linear4bit)
    assert parameter_bytes(quantized) < parameter_bytes(full)
    # the packed 4-bit linear weights take about an eighth of their fp32 bytes
    packed = sum(m.weight.numel() * m.weight.element_size() for m in linear4)
    logical = sum(m.weight.quant_state.shape.numel() * 4 for m in linear4)
    assert packed * 7 < logical


def test_a_full_precision_base_is_refused(make_setup):
    setup = make_setup("qlora", "roberta")
    with pytest.raises(ValueError, match="4 bits"):
        setup.technique.apply(setup.fresh_base(), setup.ctx)


def mapped_ranges(path) -> list[tuple[int, int]]:
    """Address ranges of this process's memory maps of the file at `path` (Linux)."""
    ranges = []
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == str(path):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads Linux memory maps")
def test_the_checkpoint_file_is_unmapped_once_the_technique_applies(quantized_setup, tmp_path):
    import gc

    setup = quantized_setup("bert")
    checkpoint = (tmp_path / "bert-base" / "model.safetensors").resolve()
    base = setup.fresh_base()
    gc.collect()
    # as loaded, the unquantized weights are views into the mapped file, which stays mapped
    assert mapped_ranges(checkpoint)
    setup.technique.apply(base, setup.ctx)
    assert mapped_ranges(checkpoint) == []
