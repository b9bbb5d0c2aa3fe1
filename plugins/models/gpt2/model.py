"""GPT-2 causal language models from a hub id or a local folder (config.json + safetensors)."""

from __future__ import annotations

from typing import Any

from sdk import LoadedModel, ModelContext, ModelProvider
from sdk.hf import load_language_model, load_tokenizer


class GPT2(ModelProvider):
    """`name_or_path` is a hub id (needs the network once) or a folder saved with save_pretrained."""

    def source(self, ctx: ModelContext) -> str:
        weights = ctx.facts.weights or {}
        return (ctx.params.get("name_or_path") or "").strip() or weights.get("hub_id", "")

    def load(self, ctx: ModelContext) -> LoadedModel:
        return load_language_model(ctx, self.source(ctx))

    def load_tokenizer(self, ctx: ModelContext) -> Any:
        return load_tokenizer(self.source(ctx))
