"""The torch side of encoder prefix tuning: the prefix encoder and the prefix attention.

Imported by technique.py only when a model is built, so reading the bundle
stays cheap.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, AttentionInterface
from transformers.models.bert.modeling_bert import eager_attention_forward

ATTENTION_NAME = "peftlab_prefix"
#: the model's own attention implementations that prefix_attention can hand over to
INNER_ATTENTIONS = ("eager", "sdpa")


class PrefixEncoder(nn.Module):
    """Key and value prefixes for every layer: `forward(layer)` -> (keys, values), each (P, H).

    Without a projection each layer has its own trained tensor. With one, a
    shared (P, H) embedding goes through an MLP whose output holds every
    layer's keys and values (the prefix-tuning paper's reparameterisation,
    which steadies training).
    """

    def __init__(
        self, num_layers: int, hidden: int, num_tokens: int, projection_hidden: int | None = None
    ) -> None:
        super().__init__()
        self.num_layers, self.hidden, self.num_tokens = num_layers, hidden, num_tokens
        self.prefix: nn.Parameter | None = None
        if projection_hidden:
            self.embedding = nn.Parameter(torch.randn(num_tokens, hidden) * 0.02)
            self.down = nn.Linear(hidden, projection_hidden)
            self.up = nn.Linear(projection_hidden, num_layers * 2 * hidden)
        else:
            # std 1, like the nn.Embedding of P-tuning v2
            self.prefix = nn.Parameter(torch.randn(num_layers, 2, num_tokens, hidden))

    def forward(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prefix is not None:
            return self.prefix[layer, 0], self.prefix[layer, 1]
        hidden = torch.tanh(self.down(self.embedding))
        # only this layer's rows of the up-projection: the same values for 1/num_layers of the work
        rows = slice(layer * 2 * self.hidden, (layer + 1) * 2 * self.hidden)
        out = nn.functional.linear(hidden, self.up.weight[rows], self.up.bias[rows])
        keys, values = out.view(self.num_tokens, 2, self.hidden).unbind(1)
        return keys, values


def prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> Any:
    """Attention with the layer's prefix before the keys and values, then the model's own kernel."""
    prefix_key, prefix_value = module.peftlab_prefix_source(module.peftlab_prefix_layer)
    batch, heads, _, head_dim = key.shape
    num_tokens = prefix_key.shape[0]

    def heads_first(states: torch.Tensor) -> torch.Tensor:  # (P, H) -> (batch, heads, P, head_dim)
        states = states.to(dtype=key.dtype).view(num_tokens, heads, head_dim).transpose(0, 1)
        return states.unsqueeze(0).expand(batch, -1, -1, -1)

    key = torch.cat([heads_first(prefix_key), key], dim=2)
    value = torch.cat([heads_first(prefix_value), value], dim=2)
    if attention_mask is None and getattr(module, "is_causal", False):
        # a decoder without padding leaves causality to the kernel, which would align it to
        # the prefixed keys: spell the causal mask out, the prefix visible to every query
        attention_mask = causal_mask(query.shape[2], key.shape[2] - num_tokens, query.device)
    if attention_mask is not None:
        # every query sees the prefix: boolean masks (sdpa) keep True, float masks (eager) add 0
        keep = True if attention_mask.dtype == torch.bool else 0.0
        attention_mask = nn.functional.pad(attention_mask, (num_tokens, 0), value=keep)
    inner = module.config.peftlab_inner_attention
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(inner, eager_attention_forward)
    return attention(module, query, key, value, attention_mask, **kwargs)


def causal_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """(1, 1, queries, keys) boolean mask: query i sees keys up to its own position."""
    offset = keys - queries  # with a cache, the queries are the last positions
    mask = torch.ones(queries, keys, dtype=torch.bool, device=device).tril(diagonal=offset)
    return mask[None, None]


class PrefixAttentionConfig:
    """Stands in for the model config inside one self-attention module.

    It names `peftlab_prefix` as the attention implementation, so the module
    calls `prefix_attention`, and answers everything else from the model's
    config, including the implementation the prefix attention hands over to.
    """

    _attn_implementation = ATTENTION_NAME

    def __init__(self, config: Any) -> None:
        self._config = config

    @property
    def peftlab_inner_attention(self) -> str:
        return self._config._attn_implementation or "eager"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_config":
            raise AttributeError(name)
        return getattr(self._config, name)


def add_prefixes(model: nn.Module, attentions: list[nn.Module], encoder: PrefixEncoder) -> None:
    """Route each self-attention module (one per layer, in order) through prefix_attention."""
    inner = model.config._attn_implementation or "eager"
    if inner not in INNER_ATTENTIONS:
        raise ValueError(
            f"encoder prefix tuning works with the attention implementations {INNER_ATTENTIONS}, "
            f"the model uses {inner!r}"
        )
    AttentionInterface.register(ATTENTION_NAME, prefix_attention)
    for index, attention in enumerate(attentions):
        attention.config = PrefixAttentionConfig(attention.config)
        attention.peftlab_prefix_layer = index
        # a plain reference, not a submodule: the encoder's weights are saved once, on the model
        object.__setattr__(attention, "peftlab_prefix_source", encoder)
