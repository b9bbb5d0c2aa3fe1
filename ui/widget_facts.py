"""What a ParamSpec means for its widget, without drawing one: bounds, step, slider or field,
options, whether `depends_on` shows it, and values moved between widget and param form."""

from __future__ import annotations

import math
from typing import Any

from kernel.manifest import Manifest, ParamSpec
from kernel.params import AUTO, resolve_options

SLIDER_MAX_STEPS = 256  # an int range wider than this gets a number field (a pixel per value)


def to_widget_value(value: Any) -> Any:
    """A param value as its widget holds it (`auto` is a one-entry multiselect)."""
    if value == AUTO:
        return [AUTO]
    return value


def number_bounds(spec: ParamSpec) -> tuple[int | float | None, int | float | None]:
    """min and max cast to the param's type (Streamlit refuses mixed int/float)."""
    if spec.type == "int":
        low = math.ceil(spec.min) if spec.min is not None else None
        high = math.floor(spec.max) if spec.max is not None else None
        return low, high
    low = float(spec.min) if spec.min is not None else None
    high = float(spec.max) if spec.max is not None else None
    return low, high


def float_step(spec: ParamSpec) -> float:
    """A power-of-ten step: at most a hundred steps over the range, or the default's own
    magnitude (a 0.01-0.5 share moves in 0.01 steps, not 0.001)."""
    low, high = number_bounds(spec)
    if low is not None and high is not None and high > low:
        return 10.0 ** math.ceil(math.log10((high - low) / 100) - 1e-9)
    default = spec.default if isinstance(spec.default, int | float) else 0
    if default:
        return 10.0 ** math.floor(math.log10(abs(default)))
    return 0.01


def uses_slider(spec: ParamSpec) -> bool:
    """A slider for a bounded number, unless a slider cannot hold the values people type.

    An int range wider than SLIDER_MAX_STEPS, a float default that sits on a bound (0 as
    "auto" or "off" needs finer values than a slider offers) or off the slider's grid
    get a number field instead. Decided from the spec alone, so the widget does not
    change kind while someone drags it.
    """
    low, high = number_bounds(spec)
    if spec.type not in ("int", "float") or low is None or high is None or high <= low:
        return False
    if spec.type == "int":
        return high - low <= SLIDER_MAX_STEPS
    default = spec.default
    if not isinstance(default, int | float) or isinstance(default, bool):
        return False
    if default in (low, high):
        return False
    steps = (default - low) / float_step(spec)
    return abs(steps - round(steps)) < 1e-6


def clamp_number(spec: ParamSpec, value: Any) -> int | float:
    """A value of the param's type within its (possibly just changed) bounds."""
    cast = int if spec.type == "int" else float
    try:
        number = cast(value) if not isinstance(value, bool) else cast(spec.default or 0)
    except (TypeError, ValueError):
        number = cast(spec.default if isinstance(spec.default, int | float) else 0)
    if isinstance(number, float) and math.isnan(number):
        number = cast(spec.default or 0)
    low, high = number_bounds(spec)
    if low is not None and number < low:
        number = low
    if high is not None and number > high:
        number = high
    return number


def widget_options(spec: ParamSpec, model: Manifest | None, held: Any = None) -> list[Any]:
    """Options of a choice or multiselect; a multiselect also offers `auto` and keeps
    entries someone typed in."""
    options = list(resolve_options(spec, model) or [])
    if spec.type != "multiselect":
        return options
    if spec.default == AUTO or spec.options_from:
        options = [AUTO] + [o for o in options if o != AUTO]
    for entry in held if isinstance(held, list) else []:
        if entry not in options:
            options.append(entry)
    return options


def is_active(spec: ParamSpec, values: dict[str, Any]) -> bool:
    """depends_on as a plain equality test on the other params' current values (no eval)."""
    if not spec.depends_on:
        return True
    return all(form_value(values.get(k)) == v for k, v in spec.depends_on.items())


def form_value(value: Any) -> Any:
    """A widget's value as a param value (a multiselect of just `auto` means auto)."""
    if isinstance(value, list):
        entries = [v for v in value if v != AUTO]
        if not entries and AUTO in value:
            return AUTO
        return entries
    return value


def normalise(spec: ParamSpec, value: Any, options: list[Any]) -> Any:
    """Make a held value something the widget can show (hot reloads change specs)."""
    if spec.type in ("int", "float"):
        return clamp_number(spec, value)
    if spec.type == "bool":
        return bool(value) if isinstance(value, bool) else bool(spec.default)
    if spec.type == "choice":
        if value in options:
            return value
        return spec.default if spec.default in options else options[0]
    if spec.type == "multiselect":
        value = to_widget_value(value)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            value = to_widget_value(spec.default) if spec.default is not None else []
        if not isinstance(value, list):
            value = [value]
        return [v for v in value if v in options]
    return "" if value is None else str(value)
