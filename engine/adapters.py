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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.inference import Classifier, Prediction, load_classifier
from engine.rebuild import load_base, quiet_loading, run_info
from kernel.errors import PeftlabError
from kernel.runs import RunFolder

#: what the combined head is made of (see the module docstring)
HEAD_CHOICES = ("average", "first")
#: peft's combination types that need a `density`
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
METHODS = ("linear", "svd", "cat", "ties", "dare_linear", "dare_ties", "magnitude_prune")
#: sentences used when a run's validation split cannot be loaded again
PROBE_TEXTS = (
    "a warm, funny and moving film",
    "dull, slow and far too long",
    "the plot is thin but the cast is superb",
    "I would not watch it again",
)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


class AdapterError(PeftlabError):
    """An adapter that cannot be merged, switched or combined; the message says why."""


def _technique_id(run: RunFolder) -> str:
    return run.record().technique.id


def _adapter_config(run: RunFolder) -> dict[str, Any]:
    """adapter/adapter_config.json of a run whose technique saved a peft adapter."""
    run_info(run)  # an unfinished run is refused first, with its state
    path = run.adapter_dir / ADAPTER_CONFIG
    if not path.is_file():
        technique = _technique_id(run)
        why = (
            "its adapter/ folder is already a whole model"
            if technique == "full"
            else "it saves its own weights format, not a peft adapter"
        )
        raise AdapterError(
            f"run {run.id} (technique '{technique}') has no peft adapter: {why}", path=run.path
        )
    return json.loads(path.read_text(encoding="utf-8"))


def logits(classifier: Classifier, texts: Sequence[str]) -> Any:
    """Raw logits of the classifier's model for `texts` (one padded batch, no gradients)."""
    import torch

    batch = classifier.tokenizer(
        list(texts),
        truncation=True,
        max_length=classifier.max_length,
        padding=True,
        return_tensors="pt",
    )
    device = next(classifier.model.parameters()).device
    with torch.no_grad():
        return classifier.model.eval()(**batch.to(device)).logits.float().cpu()


def validation_texts(run: RunFolder, count: int = 8) -> list[str]:
    """The first `count` texts of the run's validation split; fixed sentences if it will not load."""
    from engine.examine import validation_split

    try:
        validation, _section = validation_split(run)
        texts = [str(t) for t in validation["text"][:count]]
    except Exception:  # noqa: BLE001 - the check still runs, on fixed sentences
        texts = []
    return texts or list(PROBE_TEXTS)


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

    technique = _technique_id(run)
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


# several adapters on one base ------------------------------------------------------------


def adapter_name(run: RunFolder) -> str:
    """The run id as a peft adapter name (module dict keys may not contain dots)."""
    return run.id.replace(".", "_")


def _base_key(run: RunFolder) -> tuple[str, ...]:
    """What must be equal for two runs' adapters to sit on one base model."""
    info = run_info(run)
    record = run.record()
    quantized = record.technique.id == "qlora"
    return (
        record.model.id,
        json.dumps(record.model.params, sort_keys=True, default=str),
        str(info.get("task")),
        json.dumps(info.get("label_names")),
        "4-bit" if quantized else "full precision",
    )


def check_same_base(runs: Sequence[RunFolder]) -> list[dict[str, Any]]:
    """Each run's adapter config, after checking they share base, task, labels and peft type."""
    if len({r.path.resolve() for r in runs}) != len(runs):
        raise AdapterError("the same run is given twice")
    configs = [_adapter_config(run) for run in runs]
    keys = [_base_key(run) for run in runs]
    fields = ("model", "model params", "task", "labels", "precision")
    for run, key in zip(runs[1:], keys[1:], strict=True):
        if key != keys[0]:
            differences = "; ".join(
                f"{name}: {theirs} vs {ours}"
                for name, theirs, ours in zip(fields, key, keys[0], strict=True)
                if theirs != ours
            )
            raise AdapterError(
                f"run {run.id} was trained on another base than run {runs[0].id} "
                f"({differences}); adapters can only share the base they were trained on",
                path=run.path,
            )
    types = {c.get("peft_type") for c in configs}
    if len(types) > 1:
        listing = ", ".join(
            f"{r.id}: {c.get('peft_type')}" for r, c in zip(runs, configs, strict=True)
        )
        raise AdapterError(
            f"adapters of different kinds cannot sit on one peft model ({listing}); "
            "pick runs of one technique family"
        )
    return configs


class AdapterSet:
    """One base model, several runs' adapters loaded under their run ids, switched by name."""

    def __init__(self, runs: Sequence[RunFolder]) -> None:
        if not runs:
            raise AdapterError("no runs given")
        self.runs = list(runs)
        check_same_base(self.runs)
        with quiet_loading():
            self._load()

    def _load(self) -> None:
        from peft import PeftModel

        first = self.runs[0]
        loaded, info = load_base(first)
        self.label_names = list(info["label_names"])
        self.names = [adapter_name(r) for r in self.runs]
        model = PeftModel.from_pretrained(
            loaded.model, str(first.adapter_dir), adapter_name=self.names[0]
        )
        for run, name in zip(self.runs[1:], self.names[1:], strict=True):
            model.load_adapter(str(run.adapter_dir), adapter_name=name)
        tokenizer = loaded.tokenizer
        if (first.adapter_dir / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(first.adapter_dir))
        self.classifier = Classifier(
            model, tokenizer, self.label_names, int(info.get("max_length") or 128)
        )

    @property
    def model(self) -> Any:
        return self.classifier.model

    def predict(self, name: str, texts: Sequence[str]) -> list[Prediction]:
        """Switch to adapter `name` (a run id) and classify `texts` with it."""
        if name not in self.names:
            raise AdapterError(f"no adapter '{name}'; loaded: {', '.join(self.names)}")
        self.model.set_adapter(name)
        return self.classifier.predict(texts)


# combine adapters ------------------------------------------------------------------------


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
            f"(technique '{_technique_id(runs[0])}')"
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
    saved_config["base_model_name_or_path"] = _adapter_config(first).get("base_model_name_or_path")
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
