"""The generic model provider: any transformers model from a hub id or a local folder.

`HubModel` is the whole of a model bundle's code: where the weights come from
(the `name_or_path` param, else the manifest's `weights`), the Auto class for
the run's task (sequence classification: `load_sequence_classifier`; causal LM
and seq2seq: `load_language_model`), and, when the manifest says
`derived: true`, the model's facts read from its config (sdk.hf_facts). The
built-in model bundles (hf and the bert, distilbert, roberta, minilm, gpt2 and
t5 presets) subclass it and add nothing but their manifest.
"""

from __future__ import annotations

from typing import Any

from sdk.base import ModelProvider
from sdk.context import LoadedModel, ModelContext
from sdk.hf import load_language_model, load_sequence_classifier, load_tokenizer, package_folder
from sdk.hf_facts import DerivedFacts, derive_facts


def model_source(params: dict[str, Any], weights: dict[str, Any]) -> str:
    """The folder or hub id to load: `name_or_path` when set, else the manifest's weights
    (a package's folder before a hub id)."""
    override = str(params.get("name_or_path") or "").strip()
    if override:
        return override
    if weights.get("package"):
        return str(package_folder(weights["package"], weights.get("subdir", "")))
    return str(weights.get("hub_id") or "")


class HubModel(ModelProvider):
    """A transformers model; `name_or_path` is a hub id (the network once) or a saved folder."""

    def source(self, ctx: ModelContext) -> str:
        return model_source(ctx.params, ctx.facts.weights or {})

    def load(self, ctx: ModelContext) -> LoadedModel:
        if ctx.task == "sequence-classification":
            return load_sequence_classifier(ctx, self.source(ctx))
        return load_language_model(ctx, self.source(ctx))

    def load_tokenizer(self, ctx: ModelContext) -> Any:
        return load_tokenizer(self.source(ctx))

    def derived_facts(self, ctx: ModelContext) -> DerivedFacts | None:
        return derive_facts(self.source(ctx)) if ctx.facts.derived else None
