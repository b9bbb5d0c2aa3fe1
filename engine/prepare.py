"""A recipe to a prepared run folder, checked the same way whichever face asks.

Resolving (ids, params, fit, with the facts a generic model bundle derives from its
config), then the cheap pre-flight checks, and only then a run folder: the CLI, the
app's Train page and the Python API / HTTP service all prepare runs here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.model_facts import derived_manifest
from engine.preflight import preflight
from kernel.jobs import prepare_run
from kernel.recipe import Recipe, resolve
from kernel.runs import RunFolder


def prepare_checked(recipe: Recipe, kernel: Any, runs_dir: Path) -> RunFolder:
    """The run folder of `recipe`, made only once every check before training passed."""
    resolved = resolve(recipe, kernel.snapshot, kernel.graph(), derive_facts=derived_manifest)
    preflight(resolved)  # cheap checks, before a run folder or a training process exists
    return prepare_run(resolved, runs_dir)
