"""T5 encoder-decoder (seq2seq) models: a preset of the generic transformers model (sdk.hf_model.HubModel)."""

from __future__ import annotations

from sdk.hf_model import HubModel


class T5(HubModel):
    """The facts are the manifest's; `name_or_path` (a folder or hub id) overrides the weights."""
