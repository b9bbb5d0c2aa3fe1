"""Check and complete parameter values against a manifest's ParamSpecs.

Validation happens here, before any model is loaded, so a wrong value is
refused in milliseconds with the valid choices listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from kernel.errors import ParamError
from kernel.manifest import Manifest, ParamSpec

AUTO = "auto"
YAML_BOOL_SPELLINGS = {False: ("no", "off", "false", "n"), True: ("yes", "on", "true", "y")}


def parse_cli_value(text: str) -> Any:
    """Turn `--set x=VALUE` text into a typed value the way YAML would."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 as text; people mean the number
            return float(value)
        except ValueError:
            return value
    return value


def resolve_options(spec: ParamSpec, model: Manifest | None) -> list[Any] | None:
    """Options of a param, taking `options_from: model.<field>` from the chosen model."""
    if spec.options_from and model is not None and model.model is not None:
        field = spec.options_from.split(".", 1)[1]
        value = getattr(model.model, field, None)
        if isinstance(value, list):
            return list(value)
    return list(spec.options) if spec.options is not None else None


def _is_active(spec: ParamSpec, values: Mapping[str, Any]) -> bool:
    if not spec.depends_on:
        return True
    return all(values.get(name) == wanted for name, wanted in spec.depends_on.items())


def _check_number(name: str, spec: ParamSpec, value: Any, where: str) -> int | float:
    if isinstance(value, bool):
        raise ParamError(f"expected {spec.type}, got a boolean", path=where, field=name)
    if spec.type == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ParamError(
                f"expected an integer, got {type(value).__name__} {value!r}", path=where, field=name
            )
    else:
        if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
            raise ParamError(
                f"expected a number, got {type(value).__name__} {value!r}", path=where, field=name
            )
        value = float(value)
    if spec.min is not None and value < spec.min:
        raise ParamError(
            f"{value} is below the minimum {spec.min:g} (allowed: {_range(spec)})",
            path=where,
            field=name,
        )
    if spec.max is not None and value > spec.max:
        raise ParamError(
            f"{value} is above the maximum {spec.max:g} (allowed: {_range(spec)})",
            path=where,
            field=name,
        )
    return value


def _range(spec: ParamSpec) -> str:
    low = f"{spec.min:g}" if spec.min is not None else "-inf"
    high = f"{spec.max:g}" if spec.max is not None else "inf"
    return f"{low}..{high}"


def check_value(
    name: str, spec: ParamSpec, value: Any, *, model: Manifest | None = None, where: str = ""
) -> Any:
    """Return the value, normalised to its declared type, or raise ParamError."""
    if spec.type in ("int", "float"):
        return _check_number(name, spec, value, where)
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ParamError(f"expected true or false, got {value!r}", path=where, field=name)
        return value
    if spec.type in ("str", "path"):
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ParamError(f"expected text, got {type(value).__name__}", path=where, field=name)
        return str(value)
    options = resolve_options(spec, model)
    if spec.type == "choice":
        if isinstance(value, bool) and options is not None:
            # YAML 1.1 reads an unquoted no/off/yes/on as a boolean: give back the option meant
            spellings = YAML_BOOL_SPELLINGS[value]
            value = next((o for o in options if str(o).lower() in spellings), value)
        if options is not None and value not in options:
            valid = ", ".join(str(o) for o in options)
            raise ParamError(f"{value!r} is not one of: {valid}", path=where, field=name)
        return value
    # multiselect: a list of strings, or `auto`; free entries are allowed (e.g. module names)
    if value == AUTO or value is None:
        return AUTO
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamError(
            f"expected a list of names or 'auto', got {value!r}", path=where, field=name
        )
    if not value:
        raise ParamError("choose at least one entry, or 'auto'", path=where, field=name)
    return list(value)


def complete_params(
    manifest: Manifest,
    values: Mapping[str, Any] | None,
    *,
    model: Manifest | None = None,
) -> dict[str, Any]:
    """Defaults filled in, every value checked; unknown keys refused with the valid names."""
    values = dict(values or {})
    where = f"{manifest.kind} '{manifest.id}'"
    unknown = sorted(set(values) - set(manifest.params))
    if unknown:
        valid = ", ".join(sorted(manifest.params)) or "(none)"
        raise ParamError(
            f"unknown parameter(s) {', '.join(unknown)}; valid: {valid}",
            path=where,
            field=unknown[0],
        )
    merged = {name: values.get(name, spec.default) for name, spec in manifest.params.items()}
    result: dict[str, Any] = {}
    for name, spec in manifest.params.items():
        if not _is_active(spec, merged):
            result[name] = merged[name]
            continue
        result[name] = check_value(name, spec, merged[name], model=model, where=where)
    return result


def defaults_problems(manifest: Manifest) -> list[ParamError]:
    """Each param whose own default breaks its own declaration (for `plugin validate`)."""
    problems = []
    for name, spec in manifest.params.items():
        if spec.default is None and spec.type not in ("str", "path"):
            problems.append(ParamError("has no default", path=manifest.id, field=f"params.{name}"))
            continue
        try:
            check_value(name, spec, spec.default, where=manifest.id)
        except ParamError as exc:
            problems.append(
                ParamError(f"default {exc.message}", path=manifest.id, field=f"params.{name}")
            )
    return problems
