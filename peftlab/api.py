"""The functions behind `import peftlab`: plugins, the capability graph, train, compare, runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.prepare import prepare_checked
from engine.process import start_run
from kernel.capabilities import CapabilityGraph
from kernel.config import RECIPES_DIR
from kernel.errors import ParamError
from kernel.recipe import RECIPE_KINDS, Recipe, load_recipe
from kernel.runs import RunFolder, list_runs
from peftlab import session
from peftlab.run import Run

DEFAULT_RECIPE = RECIPES_DIR / "default.yaml"


@dataclass(frozen=True)
class PluginInfo:
    """One discovered bundle, as `peftlab plugins list` shows it."""

    kind: str
    id: str
    name: str
    version: str
    summary: str
    origin: str
    path: Path
    params: dict[str, Any]


def plugins(kind: str | None = None) -> list[PluginInfo]:
    """Every loaded bundle (of one kind: technique, model, dataset or trainer)."""
    found = []
    for (bundle_kind, bundle_id), bundle in sorted(session.kernel().snapshot.bundles.items()):
        if kind and bundle_kind != kind:
            continue
        manifest = bundle.manifest
        params = {
            name: spec.model_dump(exclude_none=True) for name, spec in manifest.params.items()
        }
        found.append(
            PluginInfo(
                bundle_kind,
                bundle_id,
                manifest.name,
                manifest.version,
                manifest.summary,
                bundle.origin,
                Path(bundle.path),
                params,
            )
        )
    return found


def graph() -> CapabilityGraph:
    """The capability graph: `graph().check({...})` says why a combination does not fit."""
    return session.kernel().graph()


def runs() -> list[Run]:
    """Every run in the runs folder, oldest first."""
    return [Run(folder) for folder in list_runs(session.runs_dir())]


def run(ref: str | Path) -> Run:
    """One run by id, unique id prefix or folder path."""
    return Run(RunFolder.find(session.runs_dir(), str(ref)))


def train(
    recipe: str | Path | Recipe | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    technique: str | None = None,
    trainer: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    wait: bool = True,
    progress: bool = True,
    **param_values: Any,
) -> Run:
    """Train a recipe (default: the embedded demo x MiniLM x LoRA) and return its Run.

    `params={"technique.r": 16}` sets params by `kind.name`; a bare keyword such as
    `r=16` or `learning_rate=1e-3` names a param of whichever chosen plugin declares it
    (a ParamError when none or several do). With `wait=False` the call returns at once;
    `Run.wait()` and `Run.cancel()` follow or stop it.
    """
    folder = prepare(
        recipe,
        ids={"dataset": dataset, "model": model, "technique": technique, "trainer": trainer},
        name=name,
        params=params,
        **param_values,
    )
    started = Run(folder, start_run(folder))
    return started.wait(progress=progress) if wait else started


def compare(
    techniques: Sequence[str],
    recipe: str | Path | Recipe | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    progress: bool = True,
    **param_values: Any,
) -> list[Run]:
    """Train each technique on the same dataset, model and trainer settings, one after
    another; the runs in the order given (`engine.report` turns them into a table)."""
    folders = prepare_each(
        techniques, recipe, dataset=dataset, model=model, params=params, **param_values
    )  # a technique that is refused stops the comparison before anything trains
    return [Run(folder, start_run(folder)).wait(progress=progress) for folder in folders]


def prepare_each(
    techniques: Sequence[str],
    recipe: str | Path | Recipe | None = None,
    *,
    dataset: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    **param_values: Any,
) -> list[RunFolder]:
    """One run folder per technique on the same recipe, made once every technique's recipe
    passed every check (so a refusal leaves no folder behind)."""
    from engine.prepare import resolve_checked
    from kernel.jobs import prepare_run

    if not techniques:
        raise ParamError("compare needs at least one technique", field="techniques")
    ids = {"dataset": dataset, "model": model}
    recipes = [
        _recipe(recipe, {**ids, "technique": t}, None, params, param_values) for t in techniques
    ]
    checked = [resolve_checked(r, session.kernel()) for r in recipes]  # all before any folder
    return [prepare_run(resolved, session.runs_dir()) for resolved in checked]


def prepare(
    recipe: str | Path | Recipe | None = None,
    *,
    ids: Mapping[str, str | None] | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    **param_values: Any,
) -> RunFolder:
    """Resolve a recipe with its overrides and write its run folder; nothing trains yet.

    Everything that can be refused (unknown ids, bad params, plugins that do not fit)
    is refused here, before a folder exists.
    """
    chosen = _recipe(recipe, ids or {}, name, params or {}, param_values)
    return prepare_checked(chosen, session.kernel(), session.runs_dir())


def _recipe(
    recipe: str | Path | Recipe | None,
    ids: Mapping[str, str | None],
    name: str | None,
    params: Mapping[str, Any] | None,
    param_values: Mapping[str, Any],
) -> Recipe:
    """The recipe with its ids swapped and its params set (see `train`); nothing is checked."""
    base = recipe if isinstance(recipe, Recipe) else load_recipe(_path(recipe))
    chosen = base.with_overrides(dict(ids), [])
    data = chosen.model_dump()
    for key, value in _qualified(chosen, params or {}, param_values).items():
        kind, _, param = key.partition(".")
        data[kind]["params"][param] = value
    if name:
        data["name"] = name
    return Recipe.model_validate(data)


def evaluate(
    runs: Run | Sequence[Run], data: str | Path, *, limit: int = 0, write: bool = True
) -> list[Any]:
    """Score finished runs on a held-out file (.csv/.jsonl/.json/.parquet) in one process:
    runs on one base share it. Classification: accuracy with its standard error and a
    bootstrap interval, macro-F1, per-class scores, confusion matrix, calibration, speed and
    the most confidently wrong rows; generation: ROUGE, BERTScore, perplexity, exact match.
    Each result (`engine.evaluate.RunEvaluation`) is also written into its run folder."""
    from engine.evaluate import DataSource, evaluate_runs

    chosen = [runs] if isinstance(runs, Run) else list(runs)
    source = DataSource(file=Path(data).expanduser().resolve(), limit=limit)
    return evaluate_runs([r.folder for r in chosen], source, write=write)


def _path(recipe: str | Path | None) -> Path:
    return Path(recipe).expanduser().resolve() if recipe else DEFAULT_RECIPE


def _qualified(
    recipe: Recipe, params: Mapping[str, Any], bare: Mapping[str, Any]
) -> dict[str, Any]:
    """Every param as `kind.name`: bare names are looked up in the chosen plugins' params."""
    snapshot = session.kernel().snapshot
    declared = {
        kind: set(snapshot.get(kind, recipe.choice(kind).id).manifest.params)
        for kind in RECIPE_KINDS
    }
    qualified: dict[str, Any] = {}
    for key, value in params.items():
        kind, dot, param = key.partition(".")
        if not dot or kind not in RECIPE_KINDS or not param:
            raise ParamError(
                f"expected KIND.PARAM with KIND one of {', '.join(RECIPE_KINDS)}", field=key
            )
        qualified[key] = value
    for name, value in bare.items():
        owners = [kind for kind in RECIPE_KINDS if name in declared[kind]]
        if len(owners) != 1:
            where = (
                "no chosen plugin declares it" if not owners else f"declared by {', '.join(owners)}"
            )
            raise ParamError(f"{where}; pass params={{'KIND.{name}': ...}}", field=name)
        qualified[f"{owners[0]}.{name}"] = value
    return qualified
