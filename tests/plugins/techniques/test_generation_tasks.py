"""Prompt-learning techniques on generation tasks: tiny GPT-2 (causal-lm) and T5 (seq2seq).

No built-in model bundle of these tasks exists yet, so the facts are written
here the way such a bundle would declare them. These techniques go through
peft on generation models (prefix tuning included), so the adapter folder is
peft's.
"""

import pytest
import torch

from kernel.capabilities import model_misfits
from kernel.config import BUILTIN_PLUGINS
from kernel.manifest import load_manifest
from kernel.params import complete_params
from sdk import ModelFacts, TechniqueContext, count_parameters

TECHNIQUES = ["prefix_tuning", "prompt_tuning", "p_tuning"]
TASKS = {"gpt2": "causal-lm", "t5": "seq2seq"}


def build(arch):
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    torch.manual_seed(7)
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=100,
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=64,
            bos_token_id=1,
            eos_token_id=2,
        )
        return GPT2LMHeadModel(config).eval()
    config = T5Config(
        vocab_size=100,
        d_model=32,
        d_kv=16,
        d_ff=37,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(config).eval()


@pytest.mark.parametrize("arch", sorted(TASKS))
@pytest.mark.parametrize("technique_id", TECHNIQUES)
def test_contract_on_a_generation_model(technique_id, arch, technique_bundle, tmp_path):
    from peft import PeftModel

    manifest, technique = technique_bundle(technique_id)
    task = TASKS[arch]
    preset = load_manifest(BUILTIN_PLUGINS / "models" / arch / "plugin.yaml")
    assert task in manifest.requires.tasks and model_misfits(manifest, preset) == []
    ctx = TechniqueContext(
        params=complete_params(manifest, {"num_virtual_tokens": 4}),
        bundle_dir=tmp_path,
        facts=ModelFacts(architecture=arch, tasks=[task]),
        task=task,
    )
    model = technique.apply(build(arch), ctx)
    trainable, total = count_parameters(model)
    assert 0 < trainable < total

    ids = torch.randint(3, 100, (2, 7))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert moved and all(dict(model.named_parameters())[n].requires_grad for n in moved)

    model.eval()
    with torch.no_grad():
        expected = model(**batch).logits
    technique.save(model, tmp_path / "adapter", ctx)
    for reloaded in (
        technique.load(build(arch), tmp_path / "adapter", ctx),
        PeftModel.from_pretrained(build(arch), str(tmp_path / "adapter")),
    ):
        with torch.no_grad():
            torch.testing.assert_close(reloaded.eval()(**batch).logits, expected)
