"""Train: choose plugins, set their params (forms from the manifests), start and watch a run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import streamlit as st

from engine.preflight import preflight
from engine.process import start_run
from kernel.config import RECIPES_DIR
from kernel.errors import PeftlabError
from kernel.jobs import prepare_run
from kernel.manifest import Manifest
from kernel.params import parse_cli_value
from kernel.recipe import RECIPE_KINDS, PluginChoice, Recipe, load_recipe, resolve
from ui import forms
from ui.pages import _run_view, _shared

#: the model param that says where weights come from (a hub id or a local folder)
MODEL_SOURCE_PARAM = "name_or_path"
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
KIND_TITLES = {
    "dataset": "Dataset",
    "model": "Model",
    "technique": "Technique",
    "trainer": "Trainer",
}
FORM_ORDER = ("technique", "model", "dataset", "trainer")


def main() -> None:
    kernel = _shared.kernel()
    snapshot = kernel.snapshot
    graph = kernel.graph()
    st.title("Train")
    _offer_default_recipe()

    chosen = _choose_plugins(snapshot, graph)
    if chosen is None:
        return
    manifests = {kind: snapshot.get(kind, bundle_id).manifest for kind, bundle_id in chosen.items()}
    model = manifests["model"]

    source_value, source_problem = _model_source(model)
    reasons = graph.check(chosen)
    if reasons:
        st.error("These plugins do not work together:\n" + "\n".join(f"- {r}" for r in reasons))

    results: dict[str, forms.FormResult] = {}
    tabs = st.tabs([f"{KIND_TITLES[k]}: {chosen[k]}" for k in FORM_ORDER])
    for tab, kind in zip(tabs, FORM_ORDER, strict=True):
        with tab:
            manifest = manifests[kind]
            if manifest.summary:
                st.caption(manifest.summary)
            if not manifest.params:
                st.caption("No parameters.")
            exclude: tuple[str, ...] = ()
            extra: dict[str, Any] = {}
            if kind == "model" and MODEL_SOURCE_PARAM in manifest.params:
                exclude, extra = (MODEL_SOURCE_PARAM,), {MODEL_SOURCE_PARAM: source_value}
            results[kind] = forms.render_params(manifest, model=model, exclude=exclude, extra=extra)

    problems = [
        f"{KIND_TITLES[k]} parameter {name}: {msg}"
        for k in FORM_ORDER
        for name, msg in results[k].errors.items()
    ]
    problems += [
        f"{KIND_TITLES[k]}: {results[k].error}"
        for k in FORM_ORDER
        if results[k].error and not results[k].errors
    ]
    if source_problem:
        problems.append(f"Model weights: {source_problem}")
    recipe = _recipe(chosen, manifests, results)

    st.divider()
    _recipe_section(recipe, manifests)
    ready = not reasons and not problems
    if problems:
        st.error("Fix these before starting:\n" + "\n".join(f"- {p}" for p in problems))
    if st.button("Start training", type="primary", disabled=not ready, key="start"):
        _start(recipe)

    active = st.session_state.get("active_run")
    if active:
        st.subheader("Run")
        _run_view.show_run(active, key="train-run")


# plugin choice --------------------------------------------------------------------------------


def _choose_plugins(snapshot: Any, graph: Any) -> dict[str, str] | None:
    """One selectbox per kind; choices that do not fit the others say why in their label."""
    held = _shared.chosen_ids()
    for kind in RECIPE_KINDS:
        ids = snapshot.ids(kind)
        if not ids:
            st.error(f"No {kind} plugins are installed; see the Plugins page.")
            return None
        if held.get(kind) not in ids:
            held[kind] = ids[0]
        if st.session_state.get(f"choice:{kind}") not in ids:
            st.session_state[f"choice:{kind}"] = held[kind]

    columns = st.columns(len(RECIPE_KINDS))
    chosen: dict[str, str] = {}
    for column, kind in zip(columns, RECIPE_KINDS, strict=True):
        others = {k: st.session_state[f"choice:{k}"] for k in RECIPE_KINDS if k != kind}
        fits = graph.options(kind, others)
        with column:
            value = st.selectbox(
                KIND_TITLES[kind],
                snapshot.ids(kind),
                key=f"choice:{kind}",
                format_func=lambda i, fits=fits: i if not fits.get(i) else f"{i}  ⚠ {fits[i][0]}",
                help="Choices marked ⚠ do not fit the other choices; the reason follows the mark.",
            )
            if fits.get(value):
                st.caption(":red[" + "; ".join(fits[value]) + "]")
        chosen[kind] = value
        held[kind] = value
    return chosen


def _offer_default_recipe() -> None:
    """On a first visit, preset the shipped default recipe (for kinds nothing else preset)."""
    if st.session_state.get("peftlab.defaults_loaded"):
        return
    st.session_state["peftlab.defaults_loaded"] = True
    default = RECIPES_DIR / "default.yaml"
    if default.is_file():
        try:
            _apply_recipe(load_recipe(default), quiet=True)
        except PeftlabError:
            pass


# model weights --------------------------------------------------------------------------------


def model_source_problem(text: str) -> tuple[str | None, str | None]:
    """(error, note) for a model weights location typed by a person."""
    text = text.strip()
    if not text:
        return None, "empty: the model plugin's default weights"
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")) or "\\" in text:
        if not path.is_dir():
            return f"folder {text} does not exist", None
        if not (path / "config.json").is_file():
            return f"folder {text} has no config.json (not a saved model)", None
        return None, f"local folder {path.resolve()}"
    if HUB_ID_RE.match(text):
        return (
            None,
            f"hub id {text}: downloaded from the Hugging Face hub (needs network unless cached)",
        )
    return f"{text!r} is neither a local folder nor a hub id like org/name", None


def _model_source(model: Manifest) -> tuple[str, str | None]:
    """The free-text weights field under the model choice; sets the model's name_or_path."""
    if MODEL_SOURCE_PARAM not in model.params:
        return "", None
    spec = model.params[MODEL_SOURCE_PARAM]
    key = forms.widget_key("model", model.id, MODEL_SOURCE_PARAM)
    held = forms.held_values("model", model.id)
    if key not in st.session_state:
        st.session_state[key] = str(held.get(MODEL_SOURCE_PARAM, spec.default or ""))
    text = st.text_input(
        "Model weights: hub id or local folder",
        key=key,
        help=spec.help or "A hub id (org/name) or a folder with config.json; empty = the default.",
    )
    held[MODEL_SOURCE_PARAM] = text
    error, note = model_source_problem(text)
    if error:
        st.error(error)
        return text, error
    if note:
        st.caption(note)
    path = Path(text.strip()).expanduser()
    return (str(path.resolve()) if text.strip() and path.is_dir() else text.strip()), None


# recipes --------------------------------------------------------------------------------------


def _recipe(
    chosen: dict[str, str], manifests: dict[str, Manifest], results: dict[str, forms.FormResult]
) -> Recipe:
    """The recipe of what is on screen: only params that differ from the manifest defaults."""
    default_name = f"{chosen['technique']}-{chosen['model']}-{chosen['dataset']}"
    if "run_name_input" not in st.session_state:
        st.session_state["run_name_input"] = st.session_state.get("peftlab.run_name", "")
    typed = st.text_input("Run name", key="run_name_input", placeholder=default_name)
    st.session_state["peftlab.run_name"] = typed
    name = typed.strip() or default_name
    choices = {}
    for kind in RECIPE_KINDS:
        manifest = manifests[kind]
        values = results[kind].params or results[kind].values
        values = forms.absolute_paths(manifest, values)
        changed = {
            n: v
            for n, v in values.items()
            if n in manifest.params and v != manifest.params[n].default
        }
        choices[kind] = PluginChoice(id=chosen[kind], params=changed)
    return Recipe(name=name, **choices)


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


def _recipe_section(recipe: Recipe, manifests: dict[str, Manifest]) -> None:
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
        _apply_recipe(load_recipe(Path(path)))
    except PeftlabError as exc:
        st.session_state["peftlab.recipe_message"] = f"error: {exc}"
        return
    st.session_state["peftlab.recipe_message"] = f"loaded {Path(path).name}"


def _apply_recipe(recipe: Recipe, quiet: bool = False) -> None:
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
        st.session_state.pop("run_name_input", None)


# starting -------------------------------------------------------------------------------------


def _start(recipe: Recipe) -> None:
    kernel = _shared.kernel()
    try:
        resolved = resolve(recipe, kernel.snapshot, kernel.graph())
        preflight(resolved)  # the same cheap checks as `peftlab train`, before a run folder
        run = prepare_run(resolved, _shared.runs_dir())
        _shared.remember_process(run, start_run(run))
    except PeftlabError as exc:
        st.error(str(exc))
        return
    except OSError as exc:
        st.error(f"cannot start the run: {exc}")
        return
    st.session_state["active_run"] = str(run.path)
    st.toast(f"started {run.id}")


main()
