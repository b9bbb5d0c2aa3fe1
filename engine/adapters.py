"""Trained adapters beyond their run: fold one into the base weights, switch several on one
base, combine several into one.

- `export_merged`: a run's adapter merged into its base (peft `merge_and_unload`),
  saved as a standalone transformers model with its tokenizer, and checked: the
  merged model, reloaded from disk, must give the logits base + adapter gave.
- `AdapterSet`: one base model in memory, every run's adapter loaded next to
  the others under its run id (`load_adapter`), switched with `set_adapter`.
- `combine_adapters`: peft's `add_weighted_adapter` (linear, svd, ties, dare,
  cat, ...) over LoRA adapters of the same base, saved as an ordinary adapter
  folder that plain peft loads.

The classification head. Every run trains its own copy of the new head (peft
`modules_to_save`), and peft keeps one copy per adapter: switching adapters
switches heads too. peft refuses to combine adapters that each carry a head,
so `combine_adapters` loads the adapters without their heads, combines the
low-rank updates with peft, and builds the combined adapter's head itself:
the weighted average of the runs' heads (weights normalised to sum to 1) or
the first run's head (`head="first"`). The combined folder's
adapter_config.json lists the head in `modules_to_save` and the safetensors
file holds it, exactly as for a trained adapter.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.adapter_combine import combine_adapters
from engine.adapter_runs import (
    ADAPTER_CONFIG,
    AdapterError,
    AdapterSet,
    logits,
    technique_of,
    validation_texts,
)
from engine.inference import Classifier, load_classifier
from engine.rebuild import load_base, quiet_loading, run_info
from kernel.runs import RunFolder

#: loading and switching adapters live in engine.adapter_runs, combining them in
#: engine.adapter_combine; what the engine's callers use is importable from here too
__all__ = [
    "ADAPTER_CONFIG",
    "AdapterError",
    "AdapterSet",
    "MergeCheck",
    "archive_adapter",
    "combine_adapters",
    "exact_4bit_path",
    "export_adapter",
    "export_merged",
    "mergeable",
]


# merge one adapter into its base -------------------------------------------------------


@dataclass(frozen=True)
class MergeCheck:
    """What `export_merged` wrote and how closely the merged model matches base + adapter."""

    out_dir: Path
    technique: str
    texts: int
    max_abs_diff: float
    max_abs_diff_in_memory: float
    dequantized: bool = False

    def ok(self, atol: float) -> bool:
        return self.max_abs_diff <= atol


def mergeable(model: Any, technique: str) -> str | None:
    """None when peft can fold this model's adapter into its weights, else the reason why not."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        if technique == "full":
            return "technique 'full' trained every weight: its run already holds a whole model"
        return f"technique '{technique}' does not use a peft adapter, so there is nothing peft can merge"
    config = model.peft_config[model.active_adapter]
    if config.is_prompt_learning:
        return (
            f"technique '{technique}' ({config.peft_type.value}) learns virtual tokens that are fed "
            "with the input; they are not a change of weights and cannot be merged into them"
        )
    if not hasattr(model.base_model, "merge_and_unload"):
        return f"peft cannot merge {config.peft_type.value} adapters (technique '{technique}')"
    return None


def exact_4bit_path(model: Any) -> None:
    """Make bitsandbytes' 4-bit layers compute the way they do in training.

    On CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights at the first
    forward pass in eval mode and computes with a faster, less exact kernel
    (logits differ by ~1e-2). Training never uses that path, so the reference
    for the merged model is the plain dequantize-and-multiply path.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def _on_dequantized_base(run: RunFolder, classifier: Classifier) -> Classifier:
    """The run's adapter on a dequantized copy of its 4-bit base (for QLoRA).

    Merging into 4-bit weights would quantize the merged weights again and change
    the model; the dequantized base holds the weights the 4-bit layers compute
    with, so base + adapter merged in float matches the trained model.
    """
    from peft import PeftModel

    loaded, _ = load_base(run)
    base = loaded.model.dequantize()
    model = PeftModel.from_pretrained(base, str(run.adapter_dir))
    return Classifier(model, classifier.tokenizer, classifier.label_names, classifier.max_length)


def export_adapter(run: RunFolder, out_dir: Path) -> Path:
    """Copy a finished run's adapter folder (weights, config, tokenizer) to `out_dir`."""
    run_info(run)  # an unfinished run is refused first, with its state
    if out_dir.exists() and any(out_dir.iterdir()):
        raise AdapterError(f"output folder {out_dir} is not empty", path=out_dir)
    shutil.copytree(run.adapter_dir, out_dir, dirs_exist_ok=True)
    return out_dir


def archive_adapter(run: RunFolder, archive: Path) -> Path:
    """A zip file of a finished run's adapter folder (for download); its path."""
    run_info(run)
    made = shutil.make_archive(str(archive.with_suffix("")), "zip", root_dir=run.adapter_dir)
    return Path(made)


def export_merged(run: RunFolder, out_dir: Path, texts: Sequence[str] | None = None) -> MergeCheck:
    """Merge the run's adapter into the base weights and save model + tokenizer to `out_dir`."""
    with quiet_loading():
        return _export_merged(run, Path(out_dir), texts)


def _export_merged(run: RunFolder, out_dir: Path, texts: Sequence[str] | None) -> MergeCheck:
    import torch
    from transformers import AutoModelForSequenceClassification

    technique = technique_of(run)
    classifier = load_classifier(run)
    reason = mergeable(classifier.model, technique)
    if reason:
        raise AdapterError(f"cannot merge run {run.id}: {reason}", path=run.path)
    texts = list(texts or validation_texts(run))
    dequantized = bool(getattr(classifier.model.get_base_model(), "is_loaded_in_4bit", False))
    if dequantized:
        exact_4bit_path(classifier.model)
    reference = logits(classifier, texts)
    if dequantized:
        classifier = _on_dequantized_base(run, classifier)
    merged = classifier.model.merge_and_unload()
    in_memory = logits(Classifier(merged, classifier.tokenizer, [], classifier.max_length), texts)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise AdapterError("output folder is not empty", path=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    classifier.tokenizer.save_pretrained(str(out_dir))
    reloaded = AutoModelForSequenceClassification.from_pretrained(
        str(out_dir), use_safetensors=True, dtype=torch.float32
    )
    on_disk = logits(Classifier(reloaded, classifier.tokenizer, [], classifier.max_length), texts)
    info = {
        "merged_from_run": run.id,
        "technique": technique,
        "label_names": classifier.label_names,
        "max_length": classifier.max_length,
        "dequantized_4bit_base": dequantized,
    }
    (out_dir / "peftlab_export.json").write_text(json.dumps(info, indent=2) + "\n")
    return MergeCheck(
        out_dir=out_dir,
        technique=technique,
        texts=len(texts),
        max_abs_diff=float((on_disk - reference).abs().max()),
        max_abs_diff_in_memory=float((in_memory - reference).abs().max()),
        dequantized=dequantized,
    )
