"""Train: choose plugins, set their params (forms from the manifests), start and watch a run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from engine import effective, queue
from engine.prepare import prepare_checked
from kernel.errors import PeftlabError
from kernel.manifest import KINDS, Manifest
from kernel.recipe import RECIPE_KINDS, PluginChoice, Recipe
from ui import forms
from ui.model_facts import show_model_facts
from ui.views import _recipes, _run_view, _shared, _variants

#: the model param that says where weights come from (a hub id or a local folder)
MODEL_SOURCE_PARAM = "name_or_path"
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
KIND_TITLES = {kind: kind.title() for kind in KINDS}
#: the forms in the order the manifest schema lists the kinds: technique, model, dataset, trainer
FORM_ORDER = KINDS


def main() -> None:
    kernel = _shared.kernel()
    snapshot = kernel.snapshot
    graph = kernel.graph()
    st.title("Train")
    _recipes.offer_default_recipe()

    chosen = _choose_plugins(snapshot, graph)
    if chosen is None:
        return
    manifests = {kind: snapshot.get(kind, bundle_id).manifest for kind, bundle_id in chosen.items()}
    model = manifests["model"]
    _reload_problems(snapshot, chosen)

    source_value, source_problem = _model_source(model)
    reasons = graph.check(chosen)
    if not reasons and not source_problem:
        reasons = show_model_facts(kernel, chosen, source_value)
    if reasons:
        st.error("These plugins do not work together:\n" + "\n".join(f"- {r}" for r in reasons))

    results = _param_forms(chosen, manifests, source_value)
    problems = _form_problems(results, source_problem)
    recipe = _recipe(chosen, manifests, results)
    _effective_values(snapshot, chosen, results)

    st.divider()
    _recipes.recipe_section(recipe, manifests)
    ready = not reasons and not problems
    if problems:
        st.error("Fix these before starting:\n" + "\n".join(f"- {p}" for p in problems))
    _start_buttons(recipe, ready)
    options = graph.options("technique", {k: v for k, v in chosen.items() if k != "technique"})
    _compare_variants(recipe, manifests, options, ready)

    active = st.session_state.get("active_run")
    if active:
        st.subheader("Run")
        _run_view.show_run(active, key="train-run")


def _param_forms(
    chosen: dict[str, str], manifests: dict[str, Manifest], source_value: str
) -> dict[str, forms.FormResult]:
    """One tab per kind with the chosen plugin's parameter form; the model's weights source is
    asked above the tabs, so the model form leaves it out."""
    model = manifests["model"]
    results: dict[str, forms.FormResult] = {}
    # a tab click reruns, so it shows plugins changed on disk since the last click
    tabs = st.tabs(
        [f"{KIND_TITLES[k]}: {chosen[k]}" for k in FORM_ORDER], key="form-tabs", on_change="rerun"
    )
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
    return results


def _form_problems(results: dict[str, forms.FormResult], source_problem: str | None) -> list[str]:
    """Every bad parameter value of the forms, and a bad weights source, one line each."""
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
    return problems


def _start_buttons(recipe: Recipe, ready: bool) -> None:
    """Start training, or queue the run behind the one that is training."""
    busy = queue.active_runs(_shared.runs_dir())
    label = "Queue run" if busy else "Start training"
    if busy:
        st.caption(
            f"{busy[0].id} is training: a new run waits in the queue and starts when it is done "
            "(one run at a time)."
        )
    if st.button(label, type="primary", disabled=not ready, key="start"):
        _start(recipe)


def _compare_variants(
    recipe: Recipe, manifests: dict[str, Manifest], options: dict[str, list[str]], ready: bool
) -> None:
    """The compare section: queue the recipe once per chosen technique, then show the runs."""
    variants = _variants.compare_section(recipe, manifests, options) if ready else None
    if variants:
        ids = _variants.start_variants(variants, _queue_recipe)
        if ids:
            st.session_state[_variants.COMPARE_KEY] = ids
            st.session_state.pop("compare_runs", None)
            _shared.start_queued()
            st.switch_page("views/runs.py")


def _reload_problems(snapshot: Any, chosen: dict[str, str]) -> None:
    """A chosen plugin whose last reload failed: say so, since its form is the last good one."""
    for kind, bundle_id in chosen.items():
        problem = snapshot.problems.get(snapshot.get(kind, bundle_id).path)
        if problem is not None:
            st.warning(
                f"{KIND_TITLES[kind]} '{bundle_id}': the last reload failed, so this form shows "
                f"the last good version. {problem.error}"
            )
    _ok, broken = _shared.plugin_counts(snapshot)
    if broken:
        st.caption(f":red[{broken} plugin(s) with problems; the Plugins page shows why.]")


def _effective_values(
    snapshot: Any, chosen: dict[str, str], results: dict[str, forms.FormResult]
) -> None:
    """What the placeholders on screen (a learning rate of 0, `auto`) will be in the run."""
    params = {kind: results[kind].params or results[kind].values for kind in RECIPE_KINDS}
    values = effective.for_choices(snapshot, chosen, params)
    if values:
        shown = "; ".join(
            f"{key} = {effective.describe(_shown_value(params, key), value)}"
            for key, value in sorted(values.items())
        )
        st.caption(f"Effective values: {shown}")


def _shown_value(params: dict[str, dict[str, Any]], key: str) -> Any:
    kind, name = key.split(".", 1)
    return params[kind].get(name)


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
                format_func=lambda i, fits=fits, kind=kind: _choice_label(snapshot, kind, i, fits),
                help="Choices marked ⚠ do not fit the other choices; the reason follows the mark.",
            )
            if fits.get(value):
                st.caption(":red[" + "; ".join(fits[value]) + "]")
        chosen[kind] = value
        held[kind] = value
    return chosen


def _choice_label(snapshot: Any, kind: str, bundle_id: str, fits: dict[str, list[str]]) -> str:
    """A plugin's name with its id; one that does not fit says why after a mark."""
    name = snapshot.get(kind, bundle_id).manifest.name
    label = f"{name} ({bundle_id})" if name and name != bundle_id else bundle_id
    reasons = fits.get(bundle_id)
    return f"{label}  ⚠ {'; '.join(reasons)}" if reasons else label


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
    description = st.session_state.get("peftlab.recipe_description", "")
    return Recipe(name=name, description=description, **choices)


# starting -------------------------------------------------------------------------------------


def _queue_recipe(recipe: Recipe) -> str:
    """Resolve, prepare and queue one run; returns its id."""
    kernel = _shared.kernel()
    run = prepare_checked(recipe, kernel, _shared.runs_dir())  # the checks `peftlab train` makes
    queue.enqueue(run)
    return run.id


def _start(recipe: Recipe) -> None:
    try:
        run_id = _queue_recipe(recipe)
        started = _shared.start_queued()
    except PeftlabError as exc:
        st.error(str(exc))
        return
    except OSError as exc:
        st.error(f"cannot start the run: {exc}")
        return
    st.session_state["active_run"] = str(_shared.runs_dir() / run_id)
    place = len(queue.queued(_shared.runs_dir()))
    st.toast(f"started {run_id}" if started == run_id else f"queued {run_id} ({place} waiting)")


main()
