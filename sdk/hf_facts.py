"""Facts of any transformers model, derived from its config.json and the libraries' mappings.

A model bundle that declares `derived: true` in its `model:` section (the generic
`hf` bundle) does not list its architecture, tasks or module names: they are
read here from the chosen model's config, when a model is chosen, never when
plugins are listed. What each fact comes from:

* architecture: the config's `model_type`;
* tasks: which of transformers' Auto mappings know the model type (an encoder
  that has a masked-LM head is not offered as a causal LM; an encoder-decoder
  model is offered for seq2seq);
* layer kinds, attention and feed-forward module names: the modules inside the
  transformer blocks of the model built on the meta device (no weights read);
* default targets: peft's per-model-type LoRA targets, else the attention modules;
* head modules: the task model's own modules outside its base model;
* provided features: `quantizable` (bitsandbytes takes linear and Conv1D layers),
  `past-key-values` (decoders and encoder-decoders take a key/value cache; an
  encoder takes peftlab's attention prefixes when it computes attention through
  transformers' attention interface).

Results are cached by a hash of the config (and the library versions), in memory
and under `$XDG_CACHE_HOME/peftlab/model-facts/`, so choosing a model twice costs
one JSON read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.hf import ModelLoadError, check_source

#: transformers' Auto mapping that says a model type can be built for each task
TASK_MAPPINGS = {
    "sequence-classification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "causal-lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "seq2seq": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}
#: the Auto class that builds the model for each task
AUTO_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}
_CACHE: dict[str, DerivedFacts] = {}


@dataclass(frozen=True)
class DerivedFacts:
    """A model's facts as a manifest's `model:` section, and the features it provides."""

    architecture: str
    tasks: list[str]
    layer_kinds: list[str]
    attention_modules: list[str] = field(default_factory=list)
    feedforward_modules: list[str] = field(default_factory=list)
    default_target_modules: list[str] = field(default_factory=list)
    classifier_modules: list[str] = field(default_factory=list)
    num_parameters: int | None = None
    provides: list[str] = field(default_factory=list)

    def section(self) -> dict[str, Any]:
        """The `model:` section these facts stand for (without `provides`)."""
        data = asdict(self)
        data.pop("provides")
        return data


def load_config(source: str) -> Any:
    """The transformers config of a local folder or hub id, as a ModelLoadError if unreadable."""
    from transformers import AutoConfig

    source = check_source(source)
    try:
        return AutoConfig.from_pretrained(source)
    except Exception as exc:  # OSError offline / unknown id, ValueError for an unknown model type
        raise ModelLoadError(f"cannot read the config of model '{source}': {exc}") from None


def derive_facts(source: str) -> DerivedFacts:
    """The facts of the model in `source` (a folder or hub id), cached by its config's hash."""
    config = load_config(source)
    key = config_hash(config)
    if key in _CACHE:
        return _CACHE[key]
    cached = _cache_file(key)
    if cached.is_file():
        try:
            facts = DerivedFacts(**json.loads(cached.read_text(encoding="utf-8")))
        except (TypeError, ValueError):
            facts = facts_from_config(config)  # an old or damaged cache entry: derive again
    else:
        facts = facts_from_config(config)
        _write_cache(cached, facts)
    _CACHE[key] = facts
    return facts


def config_hash(config: Any) -> str:
    """A hash of the config and of the library versions the facts were derived with."""
    import peft
    import transformers

    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    stamp = f"{transformers.__version__}/{peft.__version__}/{text}"
    return hashlib.sha256(stamp.encode("utf-8")).hexdigest()[:24]


def _cache_file(key: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "peftlab" / "model-facts" / f"{key}.json"


def _write_cache(path: Path, facts: DerivedFacts) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(facts), indent=1), encoding="utf-8")
        tmp.replace(path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a read-only home only costs deriving again next time


def model_tasks(config: Any) -> list[str]:
    """The peftlab tasks transformers can build this config's model for."""
    from transformers.models.auto import modeling_auto

    model_type = config.model_type
    known = {
        task: model_type in getattr(modeling_auto, name) for task, name in TASK_MAPPINGS.items()
    }
    if getattr(config, "is_encoder_decoder", False):
        return ["seq2seq"] if known["seq2seq"] else []
    # BERT-like encoders also have a causal-LM head (as decoders of encoder-decoder pairs);
    # a model with a masked-LM head is an encoder, not a language model to instruction-tune
    if model_type in modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        known["causal-lm"] = False
    return [task for task, ok in known.items() if ok and task != "seq2seq"]


def meta_model(config: Any, task: str) -> Any:
    """The task model built on the meta device: its structure without memory or weights."""
    import torch
    import transformers

    auto = getattr(transformers, AUTO_CLASSES[task])
    with torch.device("meta"):
        return auto.from_config(config)


def facts_from_config(config: Any) -> DerivedFacts:
    """Derive the facts (see the module docstring) from a transformers config."""
    from sdk.hf_modules import block_layers, head_modules, layer_names

    tasks = model_tasks(config)
    if not tasks:
        raise ModelLoadError(
            f"model type '{config.model_type}' has no sequence-classification, causal-LM or "
            "seq2seq model in transformers"
        )
    model = meta_model(config, tasks[0])
    layers = block_layers(model)
    attention, feedforward = layer_names(layers)
    kinds = sorted({kind for _, kind in layers.values()})
    return DerivedFacts(
        architecture=config.model_type,
        tasks=tasks,
        layer_kinds=kinds,
        attention_modules=attention,
        feedforward_modules=feedforward,
        default_target_modules=default_targets(config.model_type, attention),
        classifier_modules=head_modules(model) if tasks[0] == "sequence-classification" else [],
        num_parameters=sum(p.numel() for p in model.parameters()),
        provides=provided_features(config, model, tasks, kinds),
    )


def default_targets(model_type: str, attention: list[str]) -> list[str]:
    """peft's default LoRA targets for the model type, else the query and value projections
    (as LoRA's paper and peft's defaults choose), else every attention projection."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT

    if PEFT.get(model_type):
        return list(PEFT[model_type])
    query_value = [name for name in attention if _QUERY_VALUE.match(name.rsplit(".", 1)[-1])]
    return query_value or list(attention)


_QUERY_VALUE = re.compile(r"^(q|v|query|value)([_-].*|lin|proj)?$")


def provided_features(config: Any, model: Any, tasks: list[str], kinds: list[str]) -> list[str]:
    """Feature tags the model provides (see the module docstring)."""
    features = []
    if {"linear", "conv1d"} & set(kinds):
        features.append("quantizable")
    decoder = bool({"causal-lm", "seq2seq"} & set(tasks))
    if decoder or getattr(model, "_supports_attention_backend", False):
        features.append("past-key-values")
    return features
