"""The train page's model facts: what the chosen model is, read from the model itself.

For a model bundle that derives its facts (the generic `hf` bundle), the facts
of the folder or hub id typed under the model choice: architecture, tasks,
layer kinds, target modules, the head to train, parameters. The capability
graph checks the chosen technique against them, so a misfit shows here, before
anything trains.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from engine.model_facts import derived_manifest, describe
from kernel.errors import PeftlabError

ROWS = (
    ("architecture", "architecture"),
    ("tasks", "tasks"),
    ("layer kinds", "layer_kinds"),
    ("attention modules", "attention_modules"),
    ("feed-forward modules", "feedforward_modules"),
    ("default target modules", "default_target_modules"),
    ("head to train", "classifier_modules"),
    ("parameters", "num_parameters"),
    ("provides", "provides"),
)


def facts_rows(facts: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the facts shown, lists joined, parameters with separators."""
    rows = []
    for label, key in ROWS:
        value = facts.get(key)
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "none"
        elif isinstance(value, int):
            value = f"{value:,}"
        rows.append((label, "unknown" if value is None else str(value)))
    return rows


def show_model_facts(kernel: Any, chosen: dict[str, str], source: str) -> list[str]:
    """Render the chosen model's facts; return the graph's reasons against the choice with them."""
    bundle = kernel.snapshot.get("model", chosen["model"])
    params = {"name_or_path": source} if source else {}
    if bundle.manifest.model and bundle.manifest.model.derived and not source:
        st.caption("Type a hub id or a local folder to see the model's facts.")
        return []
    try:
        with st.spinner("Reading the model's config ..."):
            facts = describe(bundle, params)
            manifest = derived_manifest(bundle, params)
    except PeftlabError as exc:
        st.error(exc.message)
        return [exc.message]
    with st.expander(f"Model facts: {facts.get('architecture')}", expanded=True):
        st.table(
            {"fact": [r[0] for r in facts_rows(facts)], "value": [r[1] for r in facts_rows(facts)]}
        )
    return kernel.graph().check(chosen, overrides={manifest.key: manifest})
