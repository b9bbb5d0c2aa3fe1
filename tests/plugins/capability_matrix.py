"""The technique x architecture matrix: what the capability graph says, and what really happens.

For one (model family, task, technique) the graph is asked with the facts of the
tiny model of that family; a pair it accepts trains one optimizer step, saves,
and reloads on a fresh base to the same outputs (peft techniques through plain
`PeftModel.from_pretrained`); a pair it refuses carries its reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.model_facts import derived_manifest
from kernel.config import KernelConfig
from kernel.core import Kernel
from kernel.params import complete_params
from sdk.context import PluginHandle

#: (row name, model bundle, tiny family or None for the bundle's own weights, task)
ROWS = [
    ("bert", "bert", "bert", "sequence-classification"),
    ("distilbert", "distilbert", "distilbert", "sequence-classification"),
    ("roberta", "roberta", "roberta", "sequence-classification"),
    ("minilm", "minilm", None, "sequence-classification"),
    ("gpt2", "gpt2", "gpt2", "causal-lm"),
    ("t5", "t5", "t5", "seq2seq"),
    ("electra", "hf", "electra", "sequence-classification"),
    ("xlm-roberta", "hf", "xlm-roberta", "sequence-classification"),
    ("albert", "hf", "albert", "sequence-classification"),
    ("deberta-v2", "hf", "deberta-v2", "sequence-classification"),
    ("llama", "hf", "llama", "causal-lm"),
    ("mistral", "hf", "mistral", "causal-lm"),
    ("qwen2", "hf", "qwen2", "causal-lm"),
    ("phi", "hf", "phi", "causal-lm"),
    ("gemma", "hf", "gemma", "causal-lm"),
    ("llama-cls", "hf", "llama", "sequence-classification"),
    ("gpt2-cls", "hf", "gpt2", "sequence-classification"),
    ("bart", "hf", "bart", "seq2seq"),
    ("mt5", "hf", "mt5", "seq2seq"),
]
TECHNIQUES = ["lora", "qlora", "ia3", "loha", "lokr", "vera", "adalora", "adapter", "head_only",
              "prompt_tuning", "p_tuning", "prefix_tuning", "full"]  # fmt: skip
#: params that keep one step tiny
FAST = {
    "adalora": {"total_steps": 4, "init_r": 4, "target_r": 2},
    "vera": {"r": 8},
    "prompt_tuning": {"num_virtual_tokens": 4},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden_size": 16},
    "prefix_tuning": {"num_virtual_tokens": 4},
    "qlora": {"gradient_checkpointing": False},
}
#: a built-in dataset of each task, so the graph also checks the technique against the task
DATASETS = {"sequence-classification": "demo", "causal-lm": "instructions", "seq2seq": "summaries"}
LABELS = ["negative", "positive"]
TEXTS = ["a warm and funny film", "dull, slow and far too long"]


@dataclass
class Outcome:
    fits: bool
    reasons: list[str]
    max_difference: float | None = None
    changed: bool = False


def kernel(*plugin_dirs: Path) -> Kernel:
    """The built-in bundles (and those in `plugin_dirs`); no user or installed ones."""
    k = Kernel(KernelConfig(plugin_dirs=list(plugin_dirs), use_entry_points=False))
    k.discover()
    return k


def model_params(row_family: str | None, folders: dict[str, Path]) -> dict[str, Any]:
    return {"name_or_path": str(folders[row_family])} if row_family else {}


def graph_reasons(
    k: Kernel, model_id: str, params: dict[str, Any], technique: str, task: str
) -> list[str]:
    """The graph's reasons against the pair on a dataset of the task, with the facts derived
    for the chosen model."""
    bundle = k.snapshot.get("model", model_id)
    manifest = derived_manifest(bundle, complete_params(bundle.manifest, params))
    ids = {"dataset": DATASETS[task], "model": model_id, "technique": technique}
    return k.graph().check(ids, overrides={manifest.key: manifest})


def handles(k: Kernel, model_id: str, params: dict[str, Any], technique: str) -> tuple[Any, Any]:
    model_bundle = k.snapshot.get("model", model_id)
    tech_bundle = k.snapshot.get("technique", technique)
    model_params_ = complete_params(model_bundle.manifest, params)
    tech_params = complete_params(
        tech_bundle.manifest, FAST.get(technique, {}), model=model_bundle.manifest
    )

    def handle(bundle: Any, values: dict[str, Any]) -> PluginHandle:
        manifest = json.loads(bundle.manifest.model_dump_json())
        return PluginHandle(bundle.manifest.id, bundle.instantiate(), values, bundle.path, manifest)

    return handle(model_bundle, model_params_), handle(tech_bundle, tech_params)


def batch(tokenizer: Any, task: str) -> dict[str, Any]:
    import torch

    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    if task == "sequence-classification":
        inputs["labels"] = torch.tensor([1, 0])
    elif task == "causal-lm":
        labels = inputs["input_ids"].clone()
        labels[inputs["attention_mask"] == 0] = -100
        inputs["labels"] = labels
    else:
        inputs["labels"] = tokenizer(["good", "bad"], return_tensors="pt")["input_ids"]
    return dict(inputs)


def outputs(model: Any, inputs: dict[str, Any]) -> Any:
    import torch

    # without labels: a reloaded AdaLoRA (inference mode) cannot add its training penalty
    features = {name: value for name, value in inputs.items() if name != "labels"}
    if "decoder_input_ids" not in features and inputs["labels"].dim() == 2:
        if model.config.is_encoder_decoder:
            features["decoder_input_ids"] = inputs["labels"]
    model.eval()
    with torch.no_grad():
        return model(**features).logits.float()


def train_save_reload(
    k: Kernel, model_id: str, params: dict[str, Any], technique: str, task: str, folder: Path
) -> tuple[bool, float]:
    """One optimizer step, save, reload on a fresh base: (did the step change the weights,
    the largest difference between the trained and the reloaded outputs)."""
    import torch

    from sdk.hf import load_base_model

    model_h, tech_h = handles(k, model_id, params, technique)
    labels = LABELS if task == "sequence-classification" else []
    torch.manual_seed(0)
    loaded, tctx = load_base_model(model_h, tech_h, task, labels)
    tctx = replace(tctx, total_steps=4)
    model = tech_h.instance.apply(loaded.model, tctx)
    inputs = batch(loaded.tokenizer, task)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # compared by weights, not outputs: an evaluation pass before training repacks
    # bitsandbytes' 4-bit CPU weights and breaks the next training step
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    model(**inputs).loss.backward()
    optimizer.step()
    expected = outputs(model, inputs)
    tech_h.instance.save(model, folder, tctx)
    torch.manual_seed(1)  # a fresh head gets other random weights: the saved ones must win
    fresh, ftctx = load_base_model(model_h, tech_h, task, labels)
    restored = reload(tech_h.instance, fresh.model, folder, replace(ftctx, total_steps=4))
    changed = any(not torch.equal(old, new) for old, new in zip(before, trainable, strict=True))
    return changed, float((outputs(restored, inputs) - expected).abs().max())


def reload(technique: Any, base: Any, folder: Path, ctx: Any) -> Any:
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(base, str(folder))
    return technique.load(base, folder, ctx)


def run_case(
    k: Kernel, row: tuple[str, str, str | None, str], technique: str, folders: dict[str, Path],
    folder: Path,
) -> Outcome:  # fmt: skip
    _name, model_id, family, task = row
    params = model_params(family, folders)
    reasons = graph_reasons(k, model_id, params, technique, task)
    if reasons:
        return Outcome(False, reasons)
    changed, difference = train_save_reload(k, model_id, params, technique, task, folder)
    return Outcome(True, [], difference, changed)
