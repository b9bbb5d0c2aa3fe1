"""Combining several runs' LoRA adapters into one (peft `add_weighted_adapter`), with the
classification head built as engine.adapters' docstring describes, saved for plain peft."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.adapter_runs import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_PREFIX,
    AdapterError,
    adapter_config,
    adapter_name,
    check_same_base,
    logits,
    technique_of,
    validation_texts,
)
from engine.inference import Classifier
from engine.rebuild import load_base, quiet_loading
from kernel.runs import RunFolder

#: what the combined head is made of (see the module docstring)
HEAD_CHOICES = ("average", "first")
#: peft's combination types that need a `density`
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
METHODS = ("linear", "svd", "cat", "ties", "dare_linear", "dare_ties", "magnitude_prune")


@dataclass
class CombineResult:
    out_dir: Path
    method: str
    weights: list[float]
    runs: list[str]
    head: str
    max_abs_diff: float
    notes: list[str] = field(default_factory=list)


def _is_head(key: str, heads: Sequence[str]) -> bool:
    from sdk.peft_utils import module_matches

    module = key.removeprefix(PEFT_PREFIX).rsplit(".", 1)[0]
    return any(module_matches(module, h) for h in heads)


def combine_adapters(
    runs: Sequence[RunFolder],
    out_dir: Path,
    *,
    weights: Sequence[float] | None = None,
    method: str = "linear",
    density: float | None = None,
    head: str = "average",
    svd_rank: int | None = None,
) -> CombineResult:
    """One adapter from several (peft add_weighted_adapter), saved to `out_dir` for plain peft."""
    with quiet_loading():
        return _combine(runs, Path(out_dir), weights, method, density, head, svd_rank)


@dataclass
class _Loaded:
    """Every run's adapter on one base (heads held apart), as `_load_adapters` leaves them."""

    model: Any
    names: list[str]
    heads_of: list[dict[str, Any]]
    head_modules: list[str]
    task_type: Any


def _combine(
    runs: Sequence[RunFolder],
    out_dir: Path,
    weights: Sequence[float] | None,
    method: str,
    density: float | None,
    head: str,
    svd_rank: int | None,
) -> CombineResult:
    runs = list(runs)
    weights = _check_combine(runs, out_dir, weights, method, density, head)
    first = runs[0]
    loaded, info = load_base(first)
    adapters = _load_adapters(loaded.model, runs)
    kind = check_same_base(runs)[0].get("peft_type")
    kwargs: dict[str, Any] = {}
    if kind == "LORA":
        kwargs = {"combination_type": method, "density": density}
        if svd_rank:
            kwargs["svd_rank"] = svd_rank
    model = adapters.model
    model.add_weighted_adapter(adapters.names, list(weights), adapter_name="default", **kwargs)
    model.set_adapter("default")
    model.eval()
    combined_head = _combined_head(adapters.heads_of, weights, head)
    _put_head(loaded.model, combined_head)  # the in-memory model gets it too, for the check
    tokenizer = _run_tokenizer(first, loaded.tokenizer)
    labels, max_length = list(info["label_names"]), int(info.get("max_length") or 128)
    texts = validation_texts(first)
    expected = logits(Classifier(model, tokenizer, labels, max_length), texts)
    _save_combined(model, out_dir, adapters, combined_head, first)
    tokenizer.save_pretrained(str(out_dir))
    notes = _combine_notes(method, head, first)
    record = {"runs": [r.id for r in runs], "weights": list(weights), "method": method,
              "density": density, "head": head, "label_names": labels, "notes": notes}  # fmt: skip
    (out_dir / "peftlab_combined.json").write_text(json.dumps(record, indent=2) + "\n")
    got = _reloaded_logits(first, out_dir, tokenizer, max_length, texts)
    return CombineResult(
        out_dir=out_dir,
        method=method,
        weights=list(weights),
        runs=[r.id for r in runs],
        head=head,
        max_abs_diff=float((got - expected).abs().max()),
        notes=notes,
    )


def _check_combine(
    runs: list[RunFolder],
    out_dir: Path,
    weights: Sequence[float] | None,
    method: str,
    density: float | None,
    head: str,
) -> list[float]:
    """The weights to use, once every argument and the runs' adapters are known to combine."""
    if len(runs) < 2:
        raise AdapterError("combining needs at least two runs")
    weights = [1.0 / len(runs)] * len(runs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(runs):
        raise AdapterError(f"{len(weights)} weight(s) for {len(runs)} run(s)")
    if method not in METHODS:
        raise AdapterError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    if method in DENSITY_METHODS and density is None:
        raise AdapterError(f"method '{method}' needs --density (share of values kept, 0..1)")
    if head not in HEAD_CHOICES:
        raise AdapterError(f"head must be one of {', '.join(HEAD_CHOICES)}")
    if head == "average" and abs(sum(weights)) < 1e-12:
        raise AdapterError("the weights sum to 0: an averaged head is undefined; use head 'first'")
    kind = check_same_base(runs)[0].get("peft_type")
    if kind not in ("LORA", "IA3"):
        raise AdapterError(
            f"peft combines LoRA adapters (and IA3, linearly); these are {kind} "
            f"(technique '{technique_of(runs[0])}')"
        )
    if kind == "IA3" and method != "linear":
        raise AdapterError("peft combines IA3 adapters with method 'linear' only")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise AdapterError("output folder is not empty", path=out_dir)
    return weights


def _load_adapters(base: Any, runs: list[RunFolder]) -> _Loaded:
    """Each run's low-rank update on `base` under its own name; their heads set aside."""
    from peft import PeftConfig, PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    loaded = _Loaded(None, [adapter_name(r) for r in runs], [], [], None)
    for run, name in zip(runs, loaded.names, strict=True):
        config = PeftConfig.from_pretrained(str(run.adapter_dir))
        loaded.task_type = loaded.task_type or config.task_type
        heads = loaded.head_modules
        heads += [m for m in (config.modules_to_save or []) if m not in heads]
        # no task type and no heads: peft then neither adds nor wraps the head (see docstring)
        config.task_type = None
        config.modules_to_save = None
        config.inference_mode = True
        state = load_file(str(run.adapter_dir / ADAPTER_WEIGHTS))
        loaded.heads_of.append({k: v for k, v in state.items() if _is_head(k, heads)})
        state = {k: v for k, v in state.items() if not _is_head(k, heads)}
        if loaded.model is None:
            loaded.model = PeftModel(base, config, adapter_name=name)
        else:
            loaded.model.add_adapter(name, config)
        result = set_peft_model_state_dict(loaded.model, state, adapter_name=name)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise AdapterError(
                f"run {run.id}: {len(unexpected)} adapter tensor(s) did not fit, e.g. {unexpected[0]}"
            )
    return loaded


def _combined_head(
    heads_of: list[dict[str, Any]], weights: list[float], head: str
) -> dict[str, Any]:
    keys = set(heads_of[0])
    if any(set(h) != keys for h in heads_of):
        raise AdapterError("the runs' heads differ in shape or names; they cannot be combined")
    if head == "first":
        return {k: v.clone() for k, v in heads_of[0].items()}
    total = sum(weights)
    return {
        k: sum(w * h[k].float() for w, h in zip(weights, heads_of, strict=True)) / total
        for k in keys
    }


def _put_head(base: Any, combined_head: dict[str, Any]) -> None:
    import torch

    base_params = dict(base.named_parameters())
    with torch.no_grad():
        for key, tensor in combined_head.items():
            base_params[key.removeprefix(PEFT_PREFIX)].copy_(tensor)


def _run_tokenizer(run: RunFolder, loaded_tokenizer: Any) -> Any:
    if not (run.adapter_dir / "tokenizer_config.json").is_file():
        return loaded_tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(run.adapter_dir))


def _save_combined(
    model: Any, out_dir: Path, adapters: _Loaded, combined_head: dict[str, Any], first: RunFolder
) -> None:
    """The combined adapter as an ordinary adapter folder: config, weights and the head."""
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, selected_adapters=["default"])
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in Path(tmp).iterdir():
            if item.is_file():
                shutil.copy2(item, out_dir / item.name)
    config_path = out_dir / ADAPTER_CONFIG
    saved_config = json.loads(config_path.read_text())
    saved_config["task_type"] = getattr(adapters.task_type, "value", adapters.task_type)
    saved_config["modules_to_save"] = adapters.head_modules or None
    saved_config["base_model_name_or_path"] = adapter_config(first).get("base_model_name_or_path")
    config_path.write_text(json.dumps(saved_config, indent=2, sort_keys=True) + "\n")
    weights_path = out_dir / ADAPTER_WEIGHTS
    state = load_file(str(weights_path))
    state.update({k: v.contiguous() for k, v in combined_head.items()})
    save_file(state, str(weights_path), metadata={"format": "pt"})


def _combine_notes(method: str, head: str, first: RunFolder) -> list[str]:
    what = (
        f"the first run's ({first.id})"
        if head == "first"
        else "weighted average of the runs' heads (weights normalised to sum to 1)"
    )
    return [f"low-rank updates combined by peft add_weighted_adapter ({method})", f"head: {what}"]


def _reloaded_logits(
    first: RunFolder, out_dir: Path, tokenizer: Any, max_length: int, texts: list[str]
) -> Any:
    """The folder must load with plain peft: its logits, to compare with the model's."""
    from peft import PeftModel

    fresh, _ = load_base(first)
    reloaded = PeftModel.from_pretrained(fresh.model, str(out_dir))
    return logits(Classifier(reloaded, tokenizer, [], max_length), texts)
