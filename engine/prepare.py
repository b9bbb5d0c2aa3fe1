"""A recipe to a prepared run folder, checked the same way whichever face asks.

Resolving (ids, params, fit, with the facts a generic model bundle derives from its
config), then the cheap pre-flight checks, and only then a run folder: the CLI's train,
compare and sweep, the app's Train page and the Python API / HTTP service all prepare
runs here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.model_facts import derived_manifest
from engine.preflight import preflight
from kernel.errors import PeftlabError
from kernel.jobs import prepare_run
from kernel.recipe import Recipe, ResolvedRecipe, resolve
from kernel.runs import RunFolder


def resolve_checked(recipe: Recipe, kernel: Any) -> ResolvedRecipe:
    """`recipe` resolved and past every check before training; nothing is written."""
    resolved = resolve(recipe, kernel.snapshot, kernel.graph(), derive_facts=derived_manifest)
    preflight(resolved)  # cheap checks, before a run folder or a training process exists
    return resolved


def prepare_checked(recipe: Recipe, kernel: Any, runs_dir: Path) -> RunFolder:
    """The run folder of `recipe`, made only once every check before training passed."""
    return prepare_run(resolve_checked(recipe, kernel), runs_dir)


def check_each(recipes: Sequence[Recipe], kernel: Any) -> list[ResolvedRecipe | PeftlabError]:
    """Each recipe resolved and checked, or what refused it; nothing is written.

    When every recipe is refused for the same reason (a dataset file without the label
    column, a model folder that is not there), that one reason is raised: it concerns
    the whole set of runs, not one of them.
    """
    checked: list[ResolvedRecipe | PeftlabError] = []
    for recipe in recipes:
        try:
            checked.append(resolve_checked(recipe, kernel))
        except PeftlabError as exc:
            checked.append(exc)
    refusals = [c for c in checked if isinstance(c, PeftlabError)]
    if refusals and len(refusals) == len(checked) and len({str(e) for e in refusals}) == 1:
        raise refusals[0]
    return checked
