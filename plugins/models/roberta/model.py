"""RoBERTa encoders: a preset of the generic transformers model (sdk.hf_model.HubModel)."""

from __future__ import annotations

from sdk.hf_model import HubModel


class Roberta(HubModel):
    """The facts are the manifest's; `name_or_path` (a folder or hub id) overrides the weights."""
