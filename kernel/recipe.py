"""Recipes: dataset + model + technique + trainer, each with params.

A recipe is resolved against the registry before anything heavy happens:
unknown ids, incompatible choices and bad params are refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.errors import IncompatibleError, PeftlabError, RecipeError
from kernel.manifest import Manifest
from kernel.params import complete_params, parse_cli_value
from kernel.registry import Bundle, Snapshot
from kernel.yamlio import read_yaml

RECIPE_KINDS = ("dataset", "model", "technique", "trainer")


class PluginChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    params: dict[str, Any] = Field(default_factory=dict)


class Recipe(BaseModel):
    """What to train; the file format of manifests/recipes/*.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str = "run"
    description: str = ""
    dataset: PluginChoice
    model: PluginChoice
    technique: PluginChoice
    trainer: PluginChoice = Field(default_factory=lambda: PluginChoice(id="hf_trainer"))

    def choice(self, kind: str) -> PluginChoice:
        return getattr(self, kind)

    def ids(self) -> dict[str, str]:
        return {kind: self.choice(kind).id for kind in RECIPE_KINDS}

    def with_overrides(self, ids: dict[str, str | None], sets: list[str]) -> Recipe:
        """Apply --dataset/--model/... and --set kind.param=value; params of a swapped plugin reset."""
        data = self.model_dump()
        for kind, bundle_id in ids.items():
            if bundle_id and bundle_id != data[kind]["id"]:
                data[kind] = {"id": bundle_id, "params": {}}
        for item in sets:
            key, sep, raw = item.partition("=")
            kind, dot, param = key.strip().partition(".")
            if not sep or not dot or kind not in RECIPE_KINDS or not param:
                raise RecipeError(
                    f"--set expects KIND.PARAM=VALUE with KIND one of {', '.join(RECIPE_KINDS)}; "
                    f"got '{item}'",
                    field="--set",
                )
            data[kind]["params"][param] = parse_cli_value(raw)
        return Recipe.model_validate(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


def load_recipe(path: Path) -> Recipe:
    path = Path(path)
    try:  # safe, duplicate keys and alias bombs refused, bytes that are not UTF-8 named
        data = read_yaml(path, error=RecipeError)
    except FileNotFoundError:
        raise RecipeError("recipe file not found", path=path) from None
    except IsADirectoryError:
        raise RecipeError("a folder, not a recipe file", path=path) from None
    except OSError as exc:
        raise RecipeError(f"cannot read: {exc.strerror}", path=path) from None
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a mapping", path=path)
    data.pop("resolved", None)  # a run's recipe.yaml can be reused as a recipe:
    for kind in RECIPE_KINDS:  # keep each plugin's id and params, not where it was loaded from
        choice = data.get(kind)
        if isinstance(choice, dict) and "content_hash" in choice:
            data[kind] = {k: v for k, v in choice.items() if k in ("id", "params")}
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RecipeError(
            err["msg"], path=path, field=".".join(str(p) for p in err["loc"])
        ) from None


@dataclass(frozen=True)
class ResolvedPlugin:
    kind: str
    bundle: Bundle
    params: dict[str, Any]

    def as_record(self) -> dict[str, Any]:
        """What a training subprocess needs to load this exact bundle: data, not objects."""
        return {
            "id": self.bundle.manifest.id,
            "params": self.params,
            "path": str(self.bundle.path),
            "content_hash": self.bundle.content_hash,
            "version": self.bundle.manifest.version,
            "origin": self.bundle.origin,
        }


@dataclass(frozen=True)
class ResolvedRecipe:
    recipe: Recipe
    plugins: dict[str, ResolvedPlugin]

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.recipe.name, "description": self.recipe.description}
        for kind in RECIPE_KINDS:
            record[kind] = self.plugins[kind].as_record()
        return record


#: turns a model bundle whose facts are derived (`model.derived`) and its completed params
#: into the manifest with the facts of the model it will load; supplied by the caller, since
#: deriving them needs the model's config and the ML libraries the kernel never imports
FactsDeriver = Callable[[Bundle, dict[str, Any]], Manifest]


def absolute_paths(
    kind: str, manifest: Any, params: dict[str, Any], base_dir: Path
) -> dict[str, Any]:
    """Params with every relative path a person typed made absolute against `base_dir` (where
    they typed it): `path` params always, a model's text param when it names a local folder.

    The training process runs in the run folder, so a relative path left as typed would be
    looked up there."""
    result = dict(params)
    for name, value in params.items():
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        spec = manifest.params.get(name)
        typed = Path(value).expanduser()
        if spec is not None and spec.type == "path":
            result[name] = str((base_dir / typed).resolve())
        elif kind == "model" and spec is not None and spec.type == "str":
            local = base_dir / typed
            if value.startswith((".", "~")) or local.exists():  # a folder, not a hub id
                result[name] = str(local.resolve())
    return result


def resolve(
    recipe: Recipe,
    snapshot: Snapshot,
    graph: Any,
    derive_facts: FactsDeriver | None = None,
    *,
    base_dir: Path | None = None,
) -> ResolvedRecipe:
    """Look up every plugin, check they fit together, and complete every param; relative
    paths are resolved against `base_dir` (default: the current directory).

    With `derive_facts`, a model bundle that derives its facts is checked again with
    the facts of the model its params name, so a misfit is refused here too.
    """
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    bundles = {kind: snapshot.get(kind, recipe.choice(kind).id) for kind in RECIPE_KINDS}
    reasons = graph.check(recipe.ids())
    if reasons:
        raise IncompatibleError("these plugins do not work together: " + "; ".join(reasons))
    model_manifest = bundles["model"].manifest
    plugins = {}
    for kind in RECIPE_KINDS:
        try:
            params = complete_params(
                bundles[kind].manifest, recipe.choice(kind).params, model=model_manifest
            )
        except PeftlabError as exc:
            exc.field = f"{kind}.{exc.field}" if exc.field else kind
            exc.args = (exc.render(),)
            raise
        params = absolute_paths(kind, bundles[kind].manifest, params, base_dir)
        plugins[kind] = ResolvedPlugin(kind, bundles[kind], params)
    model = bundles["model"]
    if derive_facts is not None and model.manifest.model and model.manifest.model.derived:
        derived = derive_facts(model, plugins["model"].params)
        reasons = graph.check(recipe.ids(), overrides={model.manifest.key: derived})
        if reasons:
            raise IncompatibleError("these plugins do not work together: " + "; ".join(reasons))
    return ResolvedRecipe(recipe, plugins)
