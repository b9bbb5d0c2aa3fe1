"""Train page, "compare": the on-screen recipe in several variants (other techniques, or
several values of one param), queued as runs that train one at a time, then compared.

Not a page itself; ui/views/train.py draws it under the start button.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from kernel.errors import PeftlabError
from kernel.manifest import Manifest
from kernel.params import parse_cli_value
from kernel.recipe import PluginChoice, Recipe

#: kinds whose params a comparison can vary
VARIED_KINDS = ("technique", "trainer")
COMPARE_KEY = "peftlab.compare_runs"


def variant_recipes(
    recipe: Recipe,
    techniques: list[str],
    param: str | None = None,
    values: list[Any] | None = None,
) -> list[Recipe]:
    """One recipe per value of `param` ("kind.name") on the chosen technique (or the recipe
    itself when no values are given), then one per other technique with its defaults;
    each is named after what differs."""
    if param and values:
        kind, name = param.split(".", 1)
        choice = recipe.choice(kind)
        variants = [
            recipe.model_copy(
                update={
                    "name": f"{recipe.name} {name}={value}",
                    kind: PluginChoice(id=choice.id, params={**choice.params, name: value}),
                }
            )
            for value in values
        ]
    else:
        variants = [recipe.model_copy(update={"name": f"{recipe.name} {recipe.technique.id}"})]
    for technique in techniques:
        if technique != recipe.technique.id:
            variants.append(
                recipe.model_copy(
                    update={
                        "name": f"{recipe.name} {technique}",
                        "technique": PluginChoice(id=technique),
                    }
                )
            )
    return variants


def parse_values(text: str) -> list[Any]:
    """Comma-separated values as `--set` reads them (numbers become numbers)."""
    return [parse_cli_value(part.strip()) for part in text.split(",") if part.strip()]


def varied_params(manifests: dict[str, Manifest]) -> list[str]:
    """ "kind.name" of the number params a comparison can sweep."""
    return [
        f"{kind}.{name}"
        for kind in VARIED_KINDS
        for name, spec in manifests[kind].params.items()
        if spec.type in ("int", "float")
    ]


def compare_section(
    recipe: Recipe, manifests: dict[str, Manifest], technique_options: dict[str, list[str]]
) -> list[Recipe] | None:
    """The compare controls; the variants to start when its button was pressed, else None."""
    with st.expander("Compare: train several techniques or values as one comparison"):
        fitting = [t for t, reasons in technique_options.items() if not reasons]
        others = [t for t in fitting if t != recipe.technique.id]
        techniques = st.multiselect(
            "Also train with these techniques (each with its recommended settings)",
            others,
            key="compare_techniques",
        )
        left, right = st.columns([1, 2])
        params = ["(none)", *varied_params(manifests)]
        param = left.selectbox("Or vary one parameter", params, key="compare_param")
        text = right.text_input(
            "Values (comma-separated)", key="compare_values", placeholder="e.g. 4, 8, 16"
        )
        values = parse_values(text) if param != "(none)" else []
        variants = variant_recipes(recipe, techniques, param if values else None, values)
        st.caption(
            f"{len(variants)} run(s), queued and trained one at a time: "
            + ", ".join(v.name for v in variants)
        )
        if st.button("Start comparison", key="start_compare", disabled=len(variants) < 2):
            return variants
    return None


def start_variants(variants: list[Recipe], start: Any) -> list[str]:
    """Queue every variant through `start(recipe) -> run id`; errors are shown, not raised."""
    ids = []
    for variant in variants:
        try:
            ids.append(start(variant))
        except PeftlabError as exc:
            st.error(f"{variant.name}: {exc}")
    return ids
