"""The torch side of bottleneck adapters: the adapter module and how it is attached.

Imported by technique.py only when a model is built, so reading the bundle
stays cheap.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ADAPTER_ATTRIBUTE = "peftlab_adapter"

NON_LINEARITIES = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "swish": nn.SiLU}


class BottleneckAdapter(nn.Module):
    """x + up(f(down(x))): a residual bottleneck that starts as the identity.

    The up-projection starts at zero, so a freshly adapted model computes
    exactly what the base model did; the down-projection starts small and
    random (Houlsby et al.; AdapterHub uses the same initialisation).
    """

    def __init__(self, hidden: int, bottleneck: int, non_linearity: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.act = NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.up(self.act(self.down(hidden_states)))


def _run_adapter(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    # a forward hook that finds the adapter on the module itself, so copies of the model work
    return getattr(module, ADAPTER_ATTRIBUTE)(output)


def attach(projection: nn.Module, bottleneck: int, non_linearity: str) -> BottleneckAdapter:
    """Put an adapter on the output of a sub-layer's output projection.

    The adapter becomes a child of the projection (so it is saved with the
    model and moves with it) and a forward hook applies it, before the
    sub-layer's dropout, residual connection and LayerNorm, which is where
    Houlsby et al. place it. The projection's own weights are untouched.
    """
    # nn.Linear stores (out, in), transformers' Conv1D (GPT-2) the transpose
    width = getattr(projection, "out_features", None) or projection.weight.shape[-1]
    adapter = BottleneckAdapter(width, bottleneck, non_linearity)
    weight = projection.weight
    adapter.to(device=weight.device, dtype=weight.dtype)
    setattr(projection, ADAPTER_ATTRIBUTE, adapter)
    projection.register_forward_hook(_run_adapter)
    return adapter
