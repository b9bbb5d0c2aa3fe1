"""Prefix tuning: trained key/value prefixes in every attention layer.

Encoders (BERT, RoBERTa, DistilBERT) get a deep prefix tuning written here, in
the style of P-tuning v2: each self-attention layer attends to
`num_virtual_tokens` trained key and value vectors before the real tokens.
peft's PrefixTuningConfig does not work on these encoders with transformers 5
(it needs a `past_key_values` cache, which encoders no longer take), so the
prefixes are added where the attention is computed instead:

* every self-attention module calls the attention function its
  `config._attn_implementation` names (transformers' AttentionInterface);
* each adapted module gets a config stand-in naming `peftlab_prefix`, a
  function (layers.py) registered with that interface, which prepends the layer's prefix to the key and
  value states, extends the attention mask so every query sees the prefix,
  and then calls the model's own implementation (sdpa or eager).

Nothing in the model's code or weights changes, and queries are not
prefixed, so the output has the input's length and the classifier reads the
same positions. The prefixes live in one `PrefixEncoder` registered on the
model as `peftlab_prefix`: either a tensor per layer, or (prefix_projection)
a shared embedding passed through an MLP, as in the prefix-tuning paper. The
base model's weights are frozen; the prefixes and the classifier head train.

Saving writes `technique_model.safetensors` (the prefix encoder and the
classifier head, by parameter name) and `technique_config.json` (the params).
Loading rebuilds the same structure on a fresh base and copies the tensors:

    technique = PrefixTuning()
    model = technique.load(fresh_base_model, adapter_dir, ctx)

Causal LMs and seq2seq models still take peft's PrefixTuningConfig, which
works there; their adapter folder is peft's and loads with
`PeftModel.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk import Technique, TechniqueContext
from sdk.hf_modules import self_attention_module, transformer_blocks
from sdk.peft_utils import (
    build_peft_model,
    freeze,
    head_modules,
    load_trainable,
    peft_task_type,
    read_saved,
    save_trainable,
    unfreeze_modules,
)

ENCODER_ATTRIBUTE = "peftlab_prefix"


def uses_peft(ctx: TechniqueContext) -> bool:
    """peft's prefix tuning (a key/value cache) for language models; peftlab's attention
    prefixes for classification, on encoders and decoders alike (peft's classification
    wrapper passes a cache that transformers 5 decoders refuse)."""
    return ctx.task != "sequence-classification"


def key_value_width(config: Any) -> int:
    """Width of one token's keys (or values) in a layer: fewer heads than the queries under
    grouped-query attention (Llama, Mistral, Qwen2)."""
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return int(getattr(config, "num_key_value_heads", None) or heads) * head_dim


class PrefixTuning(Technique):
    # MiniLM, 1 epoch of rotten tomatoes, batch 32, validation accuracy (x/y: two seeds):
    # 3e-3 .70, 1e-2 .76, 3e-2 .78/.78, 5e-2 .78, 1e-1 .76
    default_learning_rate = 3e-2

    def apply(self, model: Any, ctx: TechniqueContext) -> Any:
        if uses_peft(ctx):
            return build_peft_model(model, self.peft_config(model, ctx), ctx)
        return self.apply_encoder(model, ctx.params, ctx)

    def peft_config(self, model: Any, ctx: TechniqueContext) -> Any:
        from peft import PrefixTuningConfig

        p = ctx.params
        return PrefixTuningConfig(
            task_type=peft_task_type(ctx),
            num_virtual_tokens=p["num_virtual_tokens"],
            prefix_projection=p["prefix_projection"],
            encoder_hidden_size=p["projection_hidden_size"],
        )

    def apply_encoder(self, model: Any, params: dict[str, Any], ctx: TechniqueContext) -> Any:
        from .layers import PrefixEncoder, add_prefixes

        layers = transformer_blocks(model)
        encoder = PrefixEncoder(
            num_layers=len(layers),
            hidden=key_value_width(model.config),
            num_tokens=params["num_virtual_tokens"],
            projection_hidden=params["projection_hidden_size"]
            if params["prefix_projection"]
            else None,
        )
        first = next(model.parameters())
        encoder.to(device=first.device, dtype=first.dtype)
        freeze(model)
        setattr(model, ENCODER_ATTRIBUTE, encoder)
        add_prefixes(model, [self_attention_module(layer) for layer in layers], encoder)
        unfreeze_modules(model, head_modules(ctx))
        return model

    def save(self, model: Any, directory: Path, ctx: TechniqueContext) -> None:
        if uses_peft(ctx):
            model.save_pretrained(str(directory))
            return
        save_trainable(model, directory, technique="prefix_tuning", ctx=ctx, params=ctx.params)

    def load(self, base_model: Any, directory: Path, ctx: TechniqueContext) -> Any:
        if uses_peft(ctx):
            return super().load(base_model, directory, ctx)
        saved = read_saved(directory)
        model = self.apply_encoder(base_model, saved.params, ctx)
        return load_trainable(model, directory)
