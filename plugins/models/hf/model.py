"""Any transformers model from a hub id or a local folder; facts derived from its config."""

from __future__ import annotations

from sdk.hf_model import HubModel


class HF(HubModel):
    """`name_or_path` is a hub id (needs the network once) or a folder saved with save_pretrained."""
