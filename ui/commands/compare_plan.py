"""What a comparison runs: the compare recipe file, --set split between the techniques,
and each technique's recipe checked (engine.prepare) before its run folder is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from kernel.errors import PeftlabError, RecipeError
from kernel.recipe import RECIPE_KINDS, PluginChoice, Recipe
from kernel.runs import RunFolder


class CompareRecipe(Recipe):
    """A recipe whose technique is a list: the file format of a compare recipe.

    Everything but the technique is a recipe's own field, read the same way.
    """

    name: str = "compare"
    technique: None = Field(default=None, exclude=True)
    techniques: list[PluginChoice] = Field(default_factory=list)

    @field_validator("technique", mode="before")
    @classmethod
    def _no_single_technique(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("a compare recipe lists `techniques:`, not one `technique:`")
        return value

    @field_validator("techniques", mode="before")
    @classmethod
    def _ids_as_choices(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [{"id": v.strip()} if isinstance(v, str) else v for v in value]
        return value

    def recipe_for(self, technique: PluginChoice) -> Recipe:
        return Recipe(
            name=f"{self.name}-{technique.id}",
            description=self.description,
            dataset=self.dataset,
            model=self.model,
            technique=technique,
            trainer=self.trainer,
        )


def load_compare_recipe(path: Path | None) -> CompareRecipe:
    """A compare recipe file, or a plain recipe (its technique is dropped), or the default recipe."""
    from kernel.recipe import load_recipe
    from ui.commands.train import DEFAULT_RECIPE

    path = Path(path or DEFAULT_RECIPE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError("recipe file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"not valid YAML: {exc}", path=path) from None
    if isinstance(data, dict) and "techniques" in data:
        try:
            return CompareRecipe.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RecipeError(err["msg"], path=path, field=".".join(map(str, err["loc"]))) from None
    plain = load_recipe(path)
    return CompareRecipe(
        name=plain.name if path != DEFAULT_RECIPE else "compare",
        description=plain.description,
        dataset=plain.dataset,
        model=plain.model,
        trainer=plain.trainer,
    )


def split_sets(
    sets: list[str], techniques: list[str], declared: dict[str, set[str]]
) -> dict[str, list[str]]:
    """Each technique's own list of KIND.PARAM=VALUE overrides (see the module's docstring)."""
    per_technique: dict[str, list[str]] = {t: [] for t in techniques}
    for item in sets:
        key, sep, raw = item.partition("=")
        kind, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise RecipeError(f"--set expects KIND.PARAM=VALUE; got '{item}'", field="--set")
        if kind in RECIPE_KINDS and kind != "technique":
            for t in techniques:
                per_technique[t].append(item)
        elif kind == "technique":
            takers = [t for t in techniques if param in declared[t]]
            if not takers:
                raise RecipeError(
                    f"no compared technique has a param '{param}' ({', '.join(techniques)})",
                    field="--set",
                )
            for t in takers:
                per_technique[t].append(item)
        elif kind in per_technique:
            sub, dot2, rest = param.partition(".")
            if dot2 and sub in RECIPE_KINDS:  # lora.trainer.learning_rate=...: one run's trainer
                per_technique[kind].append(f"{sub}.{rest}={raw}")
            else:
                per_technique[kind].append(f"technique.{param}={raw}")
        else:
            raise RecipeError(
                f"--set {item}: KIND must be dataset, model, trainer, technique or one of the "
                f"compared techniques ({', '.join(techniques)})",
                field="--set",
            )
    return per_technique


@dataclass
class Planned:
    """A technique's run folder once its recipe resolved, or why it did not."""

    technique: str
    run: RunFolder | None = None
    error: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)


def plan_runs(
    kernel: Any,
    base: CompareRecipe,
    technique_ids: list[str],
    sets: list[str],
    dataset: str | None,
    model: str | None,
    runs_dir: Path,
) -> list[Planned]:
    """Resolve and check each technique's recipe; a run folder for those that pass.

    Mistakes that concern every run (an unknown id, a malformed --set, a pre-flight
    problem every technique shares) raise before any run folder exists; a technique
    that does not fit the dataset and model, or refuses a param, is kept as a failed
    plan so the others still run.
    """
    from engine.prepare import check_each
    from kernel.jobs import prepare_run

    recipes = technique_recipes(kernel.snapshot, base, technique_ids, sets, dataset, model)
    checked = check_each(recipes, kernel)  # every check before the first run folder
    return [
        Planned(technique=tid, error=found.render(), recipe=recipe.model_dump())
        if isinstance(found, PeftlabError)
        else Planned(technique=tid, run=prepare_run(found, runs_dir), recipe=found.as_record())
        for tid, recipe, found in zip(technique_ids, recipes, checked, strict=True)
    ]


def technique_recipes(
    snapshot: Any,
    base: CompareRecipe,
    technique_ids: list[str],
    sets: list[str],
    dataset: str | None,
    model: str | None,
) -> list[Recipe]:
    """One ordinary recipe per compared technique, its share of --set applied."""
    for tid in technique_ids:
        snapshot.get("technique", tid)  # unknown ids are refused before anything runs
    for kind, bundle_id in (
        ("dataset", dataset or base.dataset.id),
        ("model", model or base.model.id),
    ):
        snapshot.get(kind, bundle_id)
    declared = {t: set(snapshot.get("technique", t).manifest.params) for t in technique_ids}
    per_technique = split_sets(sets, technique_ids, declared)
    choices = {c.id: c for c in base.techniques}
    return [
        base.recipe_for(choices.get(tid, PluginChoice(id=tid))).with_overrides(
            {"dataset": dataset, "model": model}, per_technique[tid]
        )
        for tid in technique_ids
    ]
