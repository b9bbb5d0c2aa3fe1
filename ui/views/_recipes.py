"""The Train page's recipe: shown as YAML and as the `peftlab train` command that runs it,
saved to and loaded from recipe files, and applied to the page's choices and forms.

Not a page itself; ui/views/train.py draws it under the forms.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import streamlit as st

from kernel.config import RECIPES_DIR
from kernel.errors import PeftlabError
from kernel.manifest import Manifest
from kernel.params import parse_cli_value
from kernel.recipe import RECIPE_KINDS, Recipe, load_recipe
from ui import forms
from ui.views import _shared


def offer_default_recipe() -> None:
    """On a first visit, preset the shipped default recipe (for kinds nothing else preset)."""
    if st.session_state.get("peftlab.defaults_loaded"):
        return
    st.session_state["peftlab.defaults_loaded"] = True
    default = RECIPES_DIR / "default.yaml"
    if default.is_file():
        try:
            apply_recipe(load_recipe(default), quiet=True)
        except PeftlabError:
            pass


def cli_command(recipe: Recipe, manifests: dict[str, Manifest], saved: Path | None = None) -> str:
    """The `peftlab train` command line that runs the same recipe.

    Without --recipe the CLI starts from the shipped default recipe, so params that
    recipe sets are set back explicitly where this one leaves them at their defaults.
    """
    if saved is not None:
        return f"peftlab train --recipe {shlex.quote(str(saved))}"
    try:
        base: Recipe | None = load_recipe(RECIPES_DIR / "default.yaml")
    except PeftlabError:
        base = None
    parts = ["peftlab", "train", "--name", recipe.name]
    for kind in RECIPE_KINDS:
        parts += [f"--{kind}", recipe.choice(kind).id]
    for kind in RECIPE_KINDS:
        params = dict(recipe.choice(kind).params)
        if base is not None and base.choice(kind).id == recipe.choice(kind).id:
            specs = manifests[kind].params
            for name in base.choice(kind).params:
                if name not in params and name in specs:
                    params[name] = specs[name].default
        for name, value in params.items():
            parts += ["--set", f"{kind}.{name}={cli_value(value)}"]
    return " \\\n  ".join(_pairs(shlex.quote(p) for p in parts))


def cli_value(value: Any) -> str:
    """A param value as `--set` text that parses back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and parse_cli_value(value) != value:
        return json.dumps(value)  # text that would read as a number, bool or nothing
    return str(value)


def _pairs(parts: Any) -> list[str]:
    """Group `--flag value` pairs so each sits on its own line."""
    parts = list(parts)
    lines, i = [" ".join(parts[:2])], 2
    while i < len(parts):
        lines.append(" ".join(parts[i : i + 2]))
        i += 2
    return lines


def recipe_file_name(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:60]
    return f"{slug or 'recipe'}.yaml"


def recipe_section(recipe: Recipe, manifests: dict[str, Manifest]) -> None:
    saved_dir = _shared.recipes_dir()
    yaml_tab, cli_tab, files_tab = st.tabs(["Recipe YAML", "CLI command", "Save / load"])
    with yaml_tab:
        st.code(recipe.to_yaml(), language="yaml")
    with cli_tab:
        st.code(cli_command(recipe, manifests), language="bash")
        st.caption("A saved recipe runs with `peftlab train --recipe FILE`.")
    with files_tab:
        left, right = st.columns(2)
        with left:
            if st.button("Save recipe", key="save_recipe"):
                saved_dir.mkdir(parents=True, exist_ok=True)
                target = saved_dir / recipe_file_name(recipe.name)
                target.write_text(recipe.to_yaml(), encoding="utf-8")
                st.success(f"saved {target}")
                st.code(cli_command(recipe, manifests, target), language="bash")
        with right:
            files = _recipe_files(saved_dir)
            if files:
                labels = {
                    str(p): f"{p.name} ({'saved' if p.parent == saved_dir else 'shipped'})"
                    for p in files
                }
                pick = st.selectbox(
                    "Recipe", list(labels), format_func=labels.get, key="recipe_pick"
                )
                st.button(
                    "Load recipe", key="load_recipe", on_click=_load_recipe_file, args=(pick,)
                )
            else:
                st.caption("No saved recipes yet.")
        message = st.session_state.pop("peftlab.recipe_message", None)
        if message:
            (st.error if message.startswith("error") else st.success)(message)


def _recipe_files(saved_dir: Path) -> list[Path]:
    files = sorted(saved_dir.glob("*.yaml")) if saved_dir.is_dir() else []
    return files + sorted(RECIPES_DIR.glob("*.yaml"))


def _load_recipe_file(path: str) -> None:
    try:
        apply_recipe(load_recipe(Path(path)))
    except PeftlabError as exc:
        st.session_state["peftlab.recipe_message"] = f"error: {exc}"
        return
    st.session_state["peftlab.recipe_message"] = f"loaded {Path(path).name}"


def apply_recipe(recipe: Recipe, quiet: bool = False) -> None:
    """Preset every choice and param from a recipe (before the widgets are drawn)."""
    snapshot = _shared.kernel().snapshot
    missing = [
        f"{k} '{recipe.choice(k).id}'"
        for k in RECIPE_KINDS
        if recipe.choice(k).id not in snapshot.ids(k)
    ]
    if missing:
        if quiet:
            return
        raise PeftlabError("not installed: " + ", ".join(missing))
    chosen = _shared.chosen_ids()
    for kind in RECIPE_KINDS:
        if quiet and kind in chosen:  # something preset it already (e.g. the Datasets page)
            continue
        choice = recipe.choice(kind)
        _shared.choose(kind, choice.id)
        forms.set_values(kind, choice.id, choice.params, replace=True)
    if not quiet:
        st.session_state["peftlab.run_name"] = recipe.name
        st.session_state["peftlab.recipe_description"] = recipe.description
        st.session_state.pop("run_name_input", None)
