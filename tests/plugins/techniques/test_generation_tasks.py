"""Prompt-learning techniques on generation tasks: tiny GPT-2 (causal-lm) and T5 (seq2seq).

No built-in model bundle of these tasks exists yet, so the facts are written
here the way such a bundle would declare them. These techniques go through
peft on generation models (prefix tuning included), so the adapter folder is
peft's.
"""

import pytest

from kernel.capabilities import model_misfits
from kernel.config import BUILTIN_PLUGINS
from kernel.manifest import load_manifest

TECHNIQUES = ["prefix_tuning", "prompt_tuning", "p_tuning"]


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
@pytest.mark.parametrize("technique_id", TECHNIQUES)
def test_contract_on_a_generation_model(
    technique_id, arch, technique_bundle, lm_context, generation_contract, tmp_path
):
    manifest, technique = technique_bundle(technique_id)
    ctx = lm_context(manifest, arch, {"num_virtual_tokens": 4}, tmp_path)
    preset = load_manifest(BUILTIN_PLUGINS / "models" / arch / "plugin.yaml")
    assert ctx.task in manifest.requires.tasks and model_misfits(manifest, preset) == []
    generation_contract(technique, ctx, arch, tmp_path)
