"""Find a transformers model's parts by structure, not by architecture name.

Every transformer stacks blocks in a `ModuleList`; inside a block, the
projections whose qualified name mentions attention (`attention`, `attn`,
`SelfAttention`, ...) belong to the attention sub-layer and the others to the
feed-forward one. Module names are shortened to the shortest dotted suffix
that names layers of one sub-layer only, the way peft matches target modules
(`query`, `attention.output.dense`, `output.dense`, `mlp.c_proj`). Used to
derive a model's facts (sdk.hf_facts) and by techniques that place their own
modules (adapters, encoder prefix tuning, head-only's last layers).
"""

from __future__ import annotations

from typing import Any

#: transformers' class of GPT-2 style projections (weights stored transposed)
CONV1D_CLASS = "Conv1D"


def layer_kind(module: Any) -> str | None:
    """`linear` or `conv1d` for an adaptable projection, None for any other module."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return "linear"
    if type(module).__name__ == CONV1D_CLASS:
        return "conv1d"
    return None


def _is_attention(path: str) -> bool:
    lowered = path.lower()
    return "attn" in lowered or "attention" in lowered


def block_layers(model: Any) -> dict[str, tuple[bool, str]]:
    """{path inside its block: (is attention, layer kind)} for every projection in any block.

    The path is what follows the block's index, e.g. `attention.self.query`. Layers
    outside the blocks (embeddings projections, poolers, heads) are not included.
    """
    layers: dict[str, tuple[bool, str]] = {}
    for name, module in model.named_modules():
        kind = layer_kind(module)
        parts = name.split(".")
        indices = [i for i, part in enumerate(parts) if part.isdigit()]
        if kind is None or not indices:
            continue
        # what follows the block's index; T5 keeps its `layer.1.` sub-layer index in the path
        path = ".".join(parts[indices[0] + 1 :])
        if path:
            layers.setdefault(path, (_is_attention(path), kind))
    return layers


def _suffixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[-n:]) for n in range(1, len(parts) + 1)]


def _matches(path: str, name: str) -> bool:
    return path == name or path.endswith("." + name)


def short_name(path: str, layers: dict[str, tuple[bool, str]]) -> str:
    """The shortest suffix of `path` that matches only layers of the same sub-layer."""
    group = layers[path][0]
    for name in _suffixes(path):
        if all(layers[other][0] == group for other in layers if _matches(other, name)):
            return name
    return path  # a path that is itself a suffix of the other sub-layer's (BERT's output.dense)


def layer_names(layers: dict[str, tuple[bool, str]]) -> tuple[list[str], list[str]]:
    """(attention module names, feed-forward module names), each in model order."""
    attention: list[str] = []
    feedforward: list[str] = []
    for path, (is_attention, _kind) in layers.items():
        names = attention if is_attention else feedforward
        name = short_name(path, layers)
        if name not in names:
            names.append(name)
    return attention, feedforward


def head_modules(model: Any) -> list[str]:
    """The task model's own modules with weights, outside its base model (the new head)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]


def transformer_blocks(model: Any) -> list[Any]:
    """Every transformer block, in order (an encoder-decoder's encoder blocks first).

    A block list is a `ModuleList` whose items hold attention projections and that
    holds no such list itself (ALBERT nests its shared layers in layer groups).
    """
    import torch

    lists = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and _holds_attention(module)
    ]
    names = [name for name, _ in lists]
    innermost = [
        module for name, module in lists if not any(o.startswith(name + ".") for o in names)
    ]
    return [block for module in innermost for block in module]


def _holds_attention(module_list: Any) -> bool:
    return len(module_list) > 0 and all(
        any(_is_attention(n) and layer_kind(m) for n, m in item.named_modules())
        for item in module_list
    )


def sublayer_outputs(block: Any) -> tuple[str, str]:
    """(last attention projection, last feed-forward projection) of one block, by name.

    Where a bottleneck adapter goes: after the output projection of each sub-layer.
    """
    attention = feedforward = ""
    for name, module in block.named_modules():
        if layer_kind(module) is None:
            continue
        if _is_attention(name):
            attention = name
        else:
            feedforward = name
    if not attention or not feedforward:
        raise ValueError(f"{type(block).__name__} has no attention or no feed-forward projection")
    return attention, feedforward


def self_attention_module(block: Any) -> Any:
    """The module of one block that computes self-attention through the model config.

    It is the first module that holds the query/key projections directly and keeps
    the config (it asks `config._attn_implementation` which attention function to call).
    """
    for _name, module in block.named_modules():
        direct = [layer_kind(child) for child in module.children()]
        if (
            any(direct)
            and hasattr(module, "config")
            and "attention" in type(module).__name__.lower()
        ):
            return module
    raise ValueError(f"{type(block).__name__} has no self-attention module that keeps its config")
