"""Widgets from a manifest's ParamSpecs: the only place the UI turns a spec into a widget.

Nothing here knows any plugin. A param's type, bounds and options decide its
widget; `advanced` params go into an expander; `depends_on` hides a param
until its condition holds. Values live in st.session_state under two keys:
the widget's own key (lost when the widget is not drawn, e.g. on another page)
and a plain "held values" mapping that survives page switches and plugin swaps.
Validation goes through kernel.params, the same code the CLI uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from kernel.errors import PeftlabError
from kernel.manifest import Manifest, ParamSpec
from kernel.params import check_value, complete_params
from ui.widget_facts import (  # noqa: F401 - the widget facts are importable from here too
    SLIDER_MAX_STEPS,
    clamp_number,
    float_step,
    form_value,
    is_active,
    normalise,
    number_bounds,
    to_widget_value,
    uses_slider,
    widget_options,
)

HELD_KEY = "peftlab.held_values"
DEFAULTS_KEY = "peftlab.held_defaults"
_UNSEEN = object()
RADIO_MAX_OPTIONS = 4


@dataclass
class FormResult:
    """What a rendered form holds: raw values, per-field errors, and the checked params."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    error: str | None = None  # from complete_params, when no single field is to blame
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.params is not None and not self.errors


# held values ---------------------------------------------------------------------------------


def widget_key(kind: str, bundle_id: str, name: str) -> str:
    return f"param:{kind}:{bundle_id}:{name}"


def held_values(kind: str, bundle_id: str) -> dict[str, Any]:
    """The mutable mapping of values last shown for one bundle's params."""
    store = st.session_state.setdefault(HELD_KEY, {})
    return store.setdefault(f"{kind}/{bundle_id}", {})


def held_defaults(kind: str, bundle_id: str) -> dict[str, Any]:
    """The manifest default each param had when its value was last shown: a value still
    equal to it was never touched, so it follows the default when a reload changes it."""
    store = st.session_state.setdefault(DEFAULTS_KEY, {})
    return store.setdefault(f"{kind}/{bundle_id}", {})


def untouched(raw: Any, seen_default: Any) -> bool:
    """Whether a shown value is the default it was shown with (numbers compared as numbers)."""
    if seen_default is _UNSEEN:
        return False
    expected = to_widget_value(seen_default)
    if isinstance(raw, int | float) and isinstance(expected, int | float):
        return not isinstance(raw, bool) and float(raw) == float(expected)
    return raw == expected


def set_values(kind: str, bundle_id: str, values: dict[str, Any], *, replace: bool = False) -> None:
    """Preset params (a loaded recipe, an uploaded file). Call before the widgets are drawn,
    e.g. from a button's on_click callback; the next render shows these values."""
    held = held_values(kind, bundle_id)
    defaults = held_defaults(kind, bundle_id)
    if replace:
        for name in list(held):
            st.session_state.pop(widget_key(kind, bundle_id, name), None)
        held.clear()
        defaults.clear()
    for name, value in values.items():
        held[name] = to_widget_value(value)
        defaults.pop(name, None)  # chosen, not a default: it stays when the default changes
        st.session_state.pop(widget_key(kind, bundle_id, name), None)


# rendering -----------------------------------------------------------------------------------


def render_params(
    manifest: Manifest,
    *,
    model: Manifest | None = None,
    exclude: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
    path_check: Callable[[str], str | None] | None = None,
) -> FormResult:
    """Draw one bundle's params and check them; returns values, errors and checked params.

    `exclude` names params the caller draws itself; `extra` supplies their values.
    """
    held = held_values(manifest.kind, manifest.id)
    excluded = set(exclude)
    specs = {n: s for n, s in manifest.params.items() if n not in excluded}
    current, options, notes = _widget_values(manifest, specs, model, held)
    current.update(extra or {})

    errors: dict[str, str] = {}
    basic = [n for n, s in specs.items() if not s.advanced]
    advanced = [n for n, s in specs.items() if s.advanced]
    for name in basic:
        _draw(manifest, name, specs[name], options[name], current, model, errors, path_check)
    if advanced:
        with st.expander(f"Advanced ({len(advanced)})"):
            for name in advanced:
                _draw(
                    manifest, name, specs[name], options[name], current, model, errors, path_check
                )

    for name in specs:
        held[name] = current[name]
    values = {name: form_value(v) for name, v in current.items()}
    result = _checked(manifest, FormResult(values, errors, notes=notes), model)
    for note in notes:
        st.caption(note)
    if result.error and not result.errors:
        st.error(result.error)
    return result


def _widget_values(
    manifest: Manifest, specs: dict[str, ParamSpec], model: Manifest | None, held: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]], list[str]]:
    """What each widget will show, before any is drawn (depends_on needs the others' values):
    the values, each param's options, and a note per value a reload moved into range."""
    kind, bundle_id = manifest.kind, manifest.id
    options: dict[str, list[Any]] = {}
    notes: list[str] = []
    current: dict[str, Any] = {}
    defaults = held_defaults(kind, bundle_id)
    for name, spec in specs.items():
        key = widget_key(kind, bundle_id, name)
        raw = st.session_state.get(key, held.get(name, to_widget_value(spec.default)))
        seen = defaults.get(name, _UNSEEN)
        if seen != spec.default and untouched(raw, seen):  # a reload changed an untouched default
            raw = to_widget_value(spec.default)
        defaults[name] = spec.default
        options[name] = widget_options(spec, model, raw)
        value = normalise(spec, raw, options[name])
        if spec.type in ("int", "float") and _moved(raw, value):
            notes.append(
                f"{_label(name, spec)}: {raw} is outside the allowed range now; set to {value}"
            )
        if key not in st.session_state or _differs(st.session_state[key], value):
            st.session_state[key] = value
        current[name] = value
    return current, options, notes


def _checked(manifest: Manifest, result: FormResult, model: Manifest | None) -> FormResult:
    """The form's values checked as a run would check them, when no field is already wrong."""
    if not result.errors:
        try:
            result.params = complete_params(manifest, result.values, model=model)
        except PeftlabError as exc:
            result.error = exc.message if exc.field else str(exc)
            if exc.field and exc.field in result.values:
                result.errors[exc.field] = exc.message
    return result


def _moved(raw: Any, value: Any) -> bool:
    """A held number that clamping changed (not merely cast from int to float)."""
    try:
        return float(raw) != float(value)
    except (TypeError, ValueError):
        return False


def _differs(a: Any, b: Any) -> bool:
    return type(a) is not type(b) or a != b


def _label(name: str, spec: ParamSpec) -> str:
    return spec.label or name


def _draw(
    manifest: Manifest,
    name: str,
    spec: ParamSpec,
    options: list[Any],
    current: dict[str, Any],
    model: Manifest | None,
    errors: dict[str, str],
    path_check: Callable[[str], str | None] | None,
) -> None:
    if not is_active(spec, current):
        return
    key = widget_key(manifest.kind, manifest.id, name)
    label = _label(name, spec)
    help_text = spec.help or None
    if spec.type == "bool":
        value = st.toggle(label, key=key, help=help_text)
    elif spec.type in ("int", "float"):
        value = _number(spec, label, key, help_text)
    elif spec.type == "choice":
        widget = st.radio if len(options) <= RADIO_MAX_OPTIONS else st.selectbox
        extra = {"horizontal": True} if widget is st.radio else {}
        value = widget(label, options, key=key, help=help_text, format_func=str, **extra)
    elif spec.type == "multiselect":
        value = st.multiselect(
            label, options, key=key, help=help_text, accept_new_options=True, format_func=str
        )
    else:
        value = st.text_input(label, key=key, help=help_text)
    current[name] = value

    message = _field_problem(name, spec, value, model, path_check)
    if message:
        errors[name] = message
        st.error(f"{label}: {message}")


def _number(spec: ParamSpec, label: str, key: str, help_text: str | None) -> int | float:
    low, high = number_bounds(spec)
    if uses_slider(spec):
        step: int | float = 1 if spec.type == "int" else float_step(spec)
        return st.slider(label, min_value=low, max_value=high, step=step, key=key, help=help_text)
    if spec.type == "int":
        return st.number_input(
            label, min_value=low, max_value=high, step=1, key=key, help=help_text
        )
    return st.number_input(
        label,
        min_value=low,
        max_value=high,
        step=float_step(spec),
        format="%g",
        key=key,
        help=help_text,
    )


def _field_problem(
    name: str,
    spec: ParamSpec,
    value: Any,
    model: Manifest | None,
    path_check: Callable[[str], str | None] | None,
) -> str | None:
    try:
        check_value(name, spec, form_value(value), model=model)
    except PeftlabError as exc:
        return exc.message
    if spec.type == "path" and value:
        return (path_check or check_path)(str(value))
    return None


def check_path(text: str) -> str | None:
    """A path param must name something that exists (runs start in their own folder,
    so a relative path is taken from where the app was started and must exist there)."""
    path = Path(text).expanduser()
    if not path.exists():
        return f"{text} does not exist"
    return None


def absolute_paths(manifest: Manifest, params: dict[str, Any]) -> dict[str, Any]:
    """Path params made absolute: a run's process works inside its run folder."""
    fixed = dict(params)
    for name, spec in manifest.params.items():
        value = fixed.get(name)
        if spec.type == "path" and isinstance(value, str) and value:
            fixed[name] = str(Path(value).expanduser().resolve())
    return fixed
