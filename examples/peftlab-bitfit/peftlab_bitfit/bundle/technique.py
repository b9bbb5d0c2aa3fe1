"""BitFit (Ben Zaken et al., 2021): fine-tune only the bias terms of a transformer.

No peft needed: apply() switches requires_grad off for every weight except the
chosen biases and the task head; save() writes just those tensors (a few
hundred kilobytes), and load() puts them back onto a fresh base model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdk import Technique, TechniqueContext

WEIGHTS_FILE = "bitfit.safetensors"
CONFIG_FILE = "bitfit.json"


def _is_under(module_name: str, names: list[str]) -> bool:
    """Whether a dotted module path is (or sits inside) a module called one of `names`."""
    return any(f".{name}." in f".{module_name}." for name in names)


class BitFit(Technique):
    """Train biases (all, or the attention projections' only) plus the task head."""

    #: bias vectors are few and small: they need a larger rate than full fine-tuning
    default_learning_rate = 1e-3

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        import torch

        params = ctx.params
        heads = list(ctx.facts.classifier_modules) if params["train_head"] else []
        attention_only = params["biases"] == "attention"
        trained = 0
        for module_name, module in model.named_modules():
            in_head = bool(heads) and _is_under(module_name, heads)
            for name, param in module.named_parameters(recurse=False):
                if in_head:
                    train = True
                elif name == "bias":
                    train = not attention_only or _is_under(
                        module_name, ctx.facts.attention_modules
                    )
                else:
                    train = params["train_layer_norm"] and isinstance(module, torch.nn.LayerNorm)
                param.requires_grad_(train)
                trained += int(train)
        if not trained:
            raise ValueError(
                "BitFit found no bias to train: the model has no bias terms, or none in "
                f"the attention modules {ctx.facts.attention_modules}"
            )
        return model

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        from safetensors.torch import save_file

        state = {
            name: param.detach().cpu().contiguous()
            for name, param in model.named_parameters()
            if param.requires_grad
        }
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(state, str(directory / WEIGHTS_FILE))
        config = {"technique": "bitfit", "params": ctx.params, "tensors": len(state)}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        from safetensors.torch import load_file

        state = load_file(str(Path(directory) / WEIGHTS_FILE))
        result = base_model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(
                f"{directory} holds tensors this model does not have: {result.unexpected_keys[:5]}"
            )
        return base_model
