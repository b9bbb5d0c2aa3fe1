"""Effective settings: the values a run actually uses where its recipe says "decide for me".

A recipe records what a person chose: a learning rate of 0 ("the technique's
recommended rate"), target modules `auto` ("the model's default targets"). The
values behind those placeholders are what differ most between two runs, so every
face shows them next to the recorded ones. They are resolved from the bundles'
own declarations (the technique's `default_learning_rate`, the model's
`default_target_modules`), recorded in the run folder when the training process
starts (effective.json), and the trainer's own report (results.json) wins when
it names a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernel.discovery import BundleLocation
from kernel.errors import PeftlabError
from kernel.params import AUTO
from kernel.recipe import RECIPE_KINDS
from kernel.registry import Snapshot, read_bundle
from kernel.runs import RunFolder, atomic_write_json

EFFECTIVE_FILE = "effective.json"
#: the trainer param whose 0 means "the technique's recommended rate" (sdk.Technique)
LEARNING_RATE = "learning_rate"
#: a multiselect filled from these model facts resolves `auto` to the model's default targets
TARGET_OPTIONS = "model.attention_modules"
#: what the trainer reports in results.json for a setting (results key -> "kind.param")
REPORTED = {"learning_rate": "trainer.learning_rate"}


def _is_auto(value: Any) -> bool:
    return value in (None, AUTO, [AUTO], [])


def _as_dict(manifest: Any) -> dict[str, Any]:
    if isinstance(manifest, Mapping):
        return dict(manifest)
    return manifest.model_dump(mode="json")


def resolve(
    manifests: Mapping[str, Any],
    params: Mapping[str, Mapping[str, Any]],
    technique_rate: float | None,
) -> dict[str, Any]:
    """ "kind.param" -> the value used, for every param left at a placeholder.

    `manifests` are Manifest objects or their JSON dicts; `params` the recorded (or
    on-screen) values per kind, where a missing param means its manifest default.
    """
    specs = {kind: _as_dict(manifests[kind]).get("params") or {} for kind in manifests}
    facts = (_as_dict(manifests["model"]).get("model") or {}) if "model" in manifests else {}
    resolved: dict[str, Any] = {}
    for kind, kind_specs in specs.items():
        given = params.get(kind) or {}
        for name, spec in kind_specs.items():
            value = given.get(name, spec.get("default"))
            if kind == "trainer" and name == LEARNING_RATE and not value and technique_rate:
                resolved[f"{kind}.{name}"] = float(technique_rate)
            elif (
                spec.get("type") == "multiselect"
                and spec.get("options_from") == TARGET_OPTIONS
                and _is_auto(value)
                and facts.get("default_target_modules")
            ):
                resolved[f"{kind}.{name}"] = list(facts["default_target_modules"])
    return resolved


def technique_rate(technique: Any) -> float | None:
    """A technique's recommended learning rate (a class attribute of sdk.Technique)."""
    rate = getattr(technique, "default_learning_rate", None)
    return float(rate) if isinstance(rate, int | float) and rate > 0 else None


def for_choices(
    snapshot: Snapshot, chosen: Mapping[str, str], params: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Effective values for plugins chosen in a form, before any run exists."""
    manifests = {kind: snapshot.get(kind, chosen[kind]).manifest for kind in RECIPE_KINDS}
    try:
        rate = technique_rate(snapshot.get("technique", chosen["technique"]).load())
    except Exception:  # a technique that does not import yet: no recommended rate to show
        rate = None
    return resolve(manifests, params, rate)


def record_for_run(run: RunFolder, handles: Mapping[str, Any]) -> dict[str, Any]:
    """Write effective.json from the loaded plugins of a starting run (the runner calls it)."""
    manifests = {kind: handle.manifest for kind, handle in handles.items()}
    params = {kind: handle.params for kind, handle in handles.items()}
    values = resolve(manifests, params, technique_rate(handles["technique"].instance))
    atomic_write_json(run.path / EFFECTIVE_FILE, values)
    return values


def for_run(run: RunFolder) -> dict[str, Any]:
    """A run's effective values: recorded at its start, else resolved from its recipe;
    what the trainer reported having used wins."""
    values = _recorded(run)
    if values is None:
        values = _from_recipe(run)
    results = run.results() or {}
    for field, key in REPORTED.items():
        if results.get(field) is not None:
            values[key] = results[field]
    return values


def _recorded(run: RunFolder) -> dict[str, Any] | None:
    try:
        data = json.loads((run.path / EFFECTIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _from_recipe(run: RunFolder) -> dict[str, Any]:
    """Resolve from the run's recorded bundles (runs from before effective.json existed)."""
    try:
        record = run.recipe()
        bundles = {kind: _recorded_bundle(run.path, record[kind]) for kind in RECIPE_KINDS}
    except (PeftlabError, OSError, KeyError, TypeError):
        return {}
    try:
        rate = technique_rate(bundles["technique"].load())
    except Exception:  # the technique's code is gone or broken: leave the rate unresolved
        rate = None
    manifests = {kind: bundle.manifest for kind, bundle in bundles.items()}
    params = {kind: record[kind].get("params") or {} for kind in RECIPE_KINDS}
    return resolve(manifests, params, rate)


def _recorded_bundle(run_dir: Path, entry: Mapping[str, Any]) -> Any:
    folder = Path(entry["path"])
    snapshot = entry.get("snapshot")
    if snapshot and (run_dir / snapshot).is_dir():
        folder = run_dir / snapshot
    return read_bundle(BundleLocation(folder, entry.get("origin", "path"), 0))


def describe(recorded: Any, effective: Any) -> str:
    """One cell: the effective value, and the placeholder it came from."""
    shown = ", ".join(str(v) for v in effective) if isinstance(effective, list) else f"{effective}"
    if isinstance(effective, float):
        shown = f"{effective:g}"
    if recorded is None:
        return f"{shown} (default)"
    if isinstance(recorded, list):
        recorded = ", ".join(str(v) for v in recorded) or AUTO
    elif isinstance(recorded, float):
        recorded = f"{recorded:g}"
    return f"{shown} (from {recorded})"
