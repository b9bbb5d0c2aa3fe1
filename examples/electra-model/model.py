"""ELECTRA encoders from a local folder or a hub id."""

from __future__ import annotations

from sdk.hf_model import HubModel


class Electra(HubModel):
    """Loads with transformers' Auto classes: `name_or_path`, else the manifest's weights."""
