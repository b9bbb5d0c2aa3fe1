"""Shared building blocks for technique bundles.

Two families of techniques live in peftlab: those built on peft (the model is
wrapped in a `PeftModel`, saved with `save_pretrained` and loadable by plain
peft) and those written here (adapters, head-only, encoder prefix tuning),
which freeze the base, add a few modules and save only what trained. Both
families need the same chores: mark the classifier head trainable, fill
model dimensions into prompt-learning configs, save and restore a small state
dict. They live here, once, so a bundle imports only from `sdk`.

torch, safetensors and peft are imported inside functions: importing the SDK
stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sdk.base import Technique
from sdk.helpers import resolve_target_modules

if TYPE_CHECKING:
    from sdk.context import TechniqueContext

#: file names of a technique written without peft (see save_trainable / load_trainable)
WEIGHTS_FILE = "technique_model.safetensors"
CONFIG_FILE = "technique_config.json"

#: peft task type for each peftlab task
PEFT_TASK_TYPES = {
    "sequence-classification": "SEQ_CLS",
    "causal-lm": "CAUSAL_LM",
    "seq2seq": "SEQ_2_SEQ_LM",
}


def peft_task_type(ctx: TechniqueContext) -> Any:
    """The `peft.TaskType` that matches the run's task."""
    from peft import TaskType

    try:
        return TaskType[PEFT_TASK_TYPES[ctx.task]]
    except KeyError:
        raise ValueError(f"task {ctx.task!r} has no peft task type") from None


def head_modules(ctx: TechniqueContext) -> list[str]:
    """Modules of the new task head, which must train and be saved.

    Only sequence classification adds a new head; language-model heads are
    pre-trained (and usually tied to the embeddings), so they stay frozen.
    """
    if ctx.task != "sequence-classification":
        return []
    return list(ctx.facts.classifier_modules)


def module_matches(qualified_name: str, module_name: str) -> bool:
    """True when `module_name` (e.g. `classifier` or `output.dense`) names this module.

    Matching is by whole dotted components from the end, the way peft matches
    target modules: `output.dense` matches `encoder.layer.0.output.dense` and
    `encoder.layer.0.attention.output.dense`, but `dense` does not match `xdense`.
    """
    return qualified_name == module_name or qualified_name.endswith("." + module_name)


def freeze(model: Any) -> None:
    """Make every parameter of the model untrainable."""
    for param in model.parameters():
        param.requires_grad_(False)


def unfreeze_modules(model: Any, module_names: Iterable[str]) -> list[str]:
    """Make the parameters of every module named in `module_names` trainable.

    Returns the qualified names of the parameters it unfroze; raises when a
    name matches no module, so a wrong manifest fails loudly instead of
    training nothing.
    """
    wanted = list(module_names)
    modules = dict(model.named_modules())
    unfrozen: list[str] = []
    for wanted_name in wanted:
        hits = [name for name in modules if name and module_matches(name, wanted_name)]
        if not hits:
            raise ValueError(f"module {wanted_name!r} not found in {type(model).__name__}")
        for name in hits:
            for param_name, param in modules[name].named_parameters():
                param.requires_grad_(True)
                unfrozen.append(f"{name}.{param_name}")
    return unfrozen


def trainable_state_dict(model: Any) -> dict[str, Any]:
    """The trainable parameters by qualified name, detached and contiguous (for safetensors)."""
    return {
        name: param.detach().contiguous().cpu()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


@dataclass
class SavedTechnique:
    """What `save_trainable` writes next to the weights: enough to rebuild the model."""

    technique: str
    params: dict[str, Any]
    task: str
    architecture: str
    tensors: list[str] = field(default_factory=list)


def save_trainable(
    model: Any,
    directory: Path,
    *,
    technique: str,
    ctx: TechniqueContext,
    params: dict[str, Any],
) -> SavedTechnique:
    """Write the model's trainable parameters and a JSON description to `directory`.

    Files: `technique_model.safetensors` (the tensors, by qualified parameter
    name of the model as `apply` returned it) and `technique_config.json`
    (technique id, the params that rebuild the same structure, task and
    architecture). The base weights are not written: they come from the model
    plugin again at load time.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = trainable_state_dict(model)
    if not state:
        raise ValueError("the model has no trainable parameters to save")
    saved = SavedTechnique(
        technique=technique,
        params=dict(params),
        task=ctx.task,
        architecture=ctx.facts.architecture,
        tensors=sorted(state),
    )
    save_file(
        state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "technique": technique}
    )
    (directory / CONFIG_FILE).write_text(
        json.dumps(saved.__dict__, indent=2, sort_keys=True) + "\n"
    )
    return saved


def read_saved(directory: Path) -> SavedTechnique:
    """The JSON description `save_trainable` wrote."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a directory written by save_trainable")
    data = json.loads(path.read_text())
    return SavedTechnique(**data)


def load_trainable(model: Any, directory: Path) -> Any:
    """Copy the saved tensors into a model that `apply` already rebuilt.

    Every saved tensor must find its parameter (the structure must match);
    parameters that were not saved keep the base model's values.
    """
    import torch
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / WEIGHTS_FILE))
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ValueError(
            f"{len(unknown)} saved tensor(s) do not exist in the rebuilt model, e.g. {unknown[0]!r}: "
            "was it saved from a different model or with different params?"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            target = params[name]
            if target.shape != tensor.shape:
                raise ValueError(
                    f"saved tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"the model expects {tuple(target.shape)}"
                )
            target.copy_(tensor.to(dtype=target.dtype, device=target.device))
    return model


class SavedWeightsTechnique(Technique):
    """A technique written without peft whose trained tensors are saved by name
    (`save_trainable`): subclasses write `build(model, params, ctx)`; loading builds a
    fresh base the same way, with the saved params, and copies the tensors in."""

    #: the `technique` recorded in technique_config.json
    saved_as: ClassVar[str] = ""

    def build(self, model: Any, params: dict[str, Any], ctx: TechniqueContext) -> Any:
        raise NotImplementedError

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        return self.build(model, ctx.params, ctx)

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        save_trainable(model, directory, technique=self.saved_as, ctx=ctx, params=ctx.params)

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        saved = read_saved(directory)
        return load_trainable(self.build(base_model, saved.params, ctx), directory)


def build_peft_model(model: Any, config: Any, ctx: TechniqueContext) -> Any:
    """`get_peft_model` with the task head trained and saved (peft `modules_to_save`).

    peft only adds heads named `classifier` or `score` by itself; model plugins
    declare theirs (DistilBERT's newly initialised `pre_classifier` too), so
    every head module the model plugin lists is added here.
    """
    from peft import get_peft_model

    heads = head_modules(ctx)
    if heads and hasattr(config, "modules_to_save"):
        existing = list(config.modules_to_save or [])
        config.modules_to_save = existing + [m for m in heads if m not in existing]
    return get_peft_model(model, config)


def peft_config_fields(config_name: str) -> set[str]:
    """Field names of a peft config dataclass, e.g. `peft_config_fields("OFTConfig")`."""
    import dataclasses

    import peft

    return {f.name for f in dataclasses.fields(getattr(peft, config_name))}


class PeftTechnique(Technique):
    """A technique that is one peft config: subclasses write `peft_config`.

    `apply` wraps the model with `build_peft_model` (task head trained and
    saved); saving and loading are peft's own (`save_pretrained`,
    `PeftModel.from_pretrained`), so the adapter folder loads with plain peft.

    A bundle whose manifest params are named after the fields of one peft
    config sets `peft_config_name` instead (e.g. `"OFTConfig"`): every param
    that is a field of that config is passed to it as is (`target_modules`
    resolved against the model plugin's defaults), and `peft_kwargs` is the
    place to translate the rest.
    """

    #: peft config class (a name in `peft`) the manifest's params are named after
    peft_config_name: ClassVar[str] = ""

    def peft_kwargs(self, model: Any, ctx: TechniqueContext) -> dict[str, Any]:
        """The params that are fields of `peft_config_name`, `target_modules` resolved."""
        fields = peft_config_fields(self.peft_config_name)
        kwargs = {name: value for name, value in ctx.params.items() if name in fields}
        if "target_modules" in kwargs:
            kwargs["target_modules"] = resolve_target_modules(kwargs["target_modules"], ctx.facts)
        return kwargs

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        """The peft config for this model and these params."""
        if not self.peft_config_name:
            raise NotImplementedError(f"{type(self).__name__} sets no peft_config_name")
        import peft

        config_class = getattr(peft, self.peft_config_name)
        return config_class(task_type=peft_task_type(ctx), **self.peft_kwargs(model, ctx))

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        return build_peft_model(model, self.peft_config(model, ctx), ctx)


def prompt_learning_dims(model: Any) -> dict[str, int]:
    """`token_dim`, `num_attention_heads`, `num_layers`, `num_transformer_submodules` from the config.

    peft derives these itself for most models but not for DistilBERT (whose
    config names them `dim`, `n_heads`, `n_layers`); transformers maps the
    standard names onto them, so reading the standard names works for all.
    Encoder-decoder models have two stacks of transformer submodules.
    """
    config = model.config
    dims = {
        # the input embeddings' width: ALBERT and ELECTRA embed in fewer dimensions than hidden
        "token_dim": int(model.get_input_embeddings().embedding_dim),
        "num_attention_heads": int(config.num_attention_heads),
        "num_layers": int(config.num_hidden_layers),
        "num_transformer_submodules": 2 if getattr(config, "is_encoder_decoder", False) else 1,
    }
    return dims


def model_name_or_path(model: Any, ctx: TechniqueContext) -> str | None:
    """Where the model's tokenizer and weights came from, if anyone knows."""
    if getattr(ctx, "model_name_or_path", None):
        return str(ctx.model_name_or_path)
    name = getattr(getattr(model, "config", None), "_name_or_path", "") or getattr(
        model, "name_or_path", ""
    )
    return str(name) or None


def encoder_layers(model: Any) -> Any:
    """The `nn.ModuleList` of transformer blocks of an encoder (BERT, RoBERTa, DistilBERT).

    Found structurally: the only ModuleList whose qualified name ends in
    `.layer` (`bert.encoder.layer`, `roberta.encoder.layer`,
    `distilbert.transformer.layer`).
    """
    import torch

    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and module_matches(name, "layer")
    ]
    if len(found) != 1:
        names = ", ".join(name for name, _ in found) or "none"
        raise ValueError(
            f"expected one encoder layer list in {type(model).__name__}, found: {names}"
        )
    return found[0][1]


def kbit_device_map() -> Any:
    """Where a bitsandbytes-quantized model is placed: the current GPU, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return {"": torch.cuda.current_device()}
    return "cpu"


def parameter_bytes(model: Any) -> int:
    """Bytes the model's parameters and buffers occupy (4-bit weights count as packed)."""
    total = 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        total += tensor.numel() * tensor.element_size()
    return total


QUANTIZED_PARAMETER_TYPES = ("Params4bit", "Int8Params")  # bitsandbytes' weight classes


def release_checkpoint_map(model: Any) -> None:
    """Copy a quantized model's unquantized weights out of the checkpoint's memory map.

    transformers loads safetensors weights as views into the memory-mapped file.
    In a model loaded in 4 or 8 bits, the embeddings, norms and head stay such
    views, and they keep the whole file mapped - including the pages of every
    full-precision linear weight read while quantizing, which count in the
    process's resident memory for the rest of the run (about 0.4 GiB for a
    BERT-base-sized model, more than its 4-bit weights save). Copying the views
    into the process's own memory lets the map go.
    """
    import gc

    import torch

    with torch.no_grad():
        for module in model.modules():
            for parameter in list(module.parameters(recurse=False)):
                if type(parameter).__name__ not in QUANTIZED_PARAMETER_TYPES:
                    parameter.data = parameter.data.clone()
            for name, buffer in list(module.named_buffers(recurse=False)):
                if buffer is not None:
                    module._buffers[name] = buffer.clone()
    gc.collect()  # the map closes once its last view is collected
