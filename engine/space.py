"""A sweep's search space: `--search KIND.PARAM=...` parsed, typed and bounded by the manifests.

`technique.r=4,8,16` lists values (any param type); `trainer.learning_rate=1e-4..1e-2:log`
is a range of a number param (`:log` samples on a log scale). Every value and both ends of
a range are checked against the param's declaration (min, max, options) before anything
runs, so a search that could produce a refused recipe is refused as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kernel.errors import ParamError, PeftlabError
from kernel.params import check_value, parse_cli_value
from kernel.recipe import RECIPE_KINDS, Recipe

RANGE_SEPARATOR = ".."
SUGGESTABLE = (bool, int, float, str)


@dataclass(frozen=True)
class SearchParam:
    """One searched param: either listed values or a numeric range."""

    kind: str
    name: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def describe(self) -> str:
        if self.is_range:
            return f"{self.key}={self.low:g}..{self.high:g}" + (":log" if self.log else "")
        return f"{self.key}=" + ",".join(str(v) for v in self.values)


def parse_search(text: str) -> SearchParam:
    """`KIND.PARAM=V1,V2,...` or `KIND.PARAM=LOW..HIGH[:log]`, not yet checked against a manifest."""
    key, sep, raw = text.partition("=")
    kind, dot, name = key.strip().partition(".")
    where = f"--search {text}"
    if not sep or not dot or not name or kind not in RECIPE_KINDS or not raw.strip():
        raise ParamError(
            "expected KIND.PARAM=V1,V2,... or KIND.PARAM=LOW..HIGH[:log] with KIND one of "
            + ", ".join(RECIPE_KINDS),
            path=where,
        )
    raw = raw.strip()
    body, colon, scale = raw.rpartition(":") if raw.endswith(":log") else (raw, "", "")
    if RANGE_SEPARATOR in body:
        low_text, _, high_text = body.partition(RANGE_SEPARATOR)
        low, high = parse_cli_value(low_text), parse_cli_value(high_text)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
            raise ParamError(f"a range needs two numbers, got '{body}'", path=where)
        if low >= high:
            raise ParamError(
                f"the range's low end {low:g} is not below its high end {high:g}", path=where
            )
        if colon and low <= 0:
            raise ParamError(f"a :log range needs a low end above 0, got {low:g}", path=where)
        return SearchParam(kind, name.strip(), low=float(low), high=float(high), log=bool(colon))
    if colon:
        raise ParamError(":log goes with a range LOW..HIGH", path=where)
    values = tuple(dict.fromkeys(parse_cli_value(v.strip()) for v in body.split(",") if v.strip()))
    return SearchParam(kind, name.strip(), values=values)


@dataclass(frozen=True)
class SearchSpace:
    """The searched params of one recipe, each checked against its plugin's manifest."""

    params: tuple[SearchParam, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def grid(self) -> dict[str, list[Any]]:
        """Optuna's GridSampler space; every param must list its values."""
        ranges = [p.key for p in self.params if p.is_range]
        if ranges:
            raise ParamError(
                "a grid sweep needs listed values, not ranges: " + ", ".join(ranges),
                path="--search",
                field=ranges[0],
            )
        return {p.key: list(p.values) for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.params)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """This trial's value of every searched param, asked of Optuna."""
        chosen: dict[str, Any] = {}
        for p in self.params:
            if not p.is_range:
                chosen[p.key] = trial.suggest_categorical(p.key, list(p.values))
            elif p.integer:
                chosen[p.key] = trial.suggest_int(
                    p.key, int(p.low or 0), int(p.high or 0), log=p.log
                )
            else:
                chosen[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
        return chosen


def as_sets(values: dict[str, Any]) -> list[str]:
    """A trial's values as `--set KIND.PARAM=VALUE` overrides of the base recipe."""
    return [f"{key}={_cli_text(value)}" for key, value in values.items()]


def _cli_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def bind(searches: list[str], recipe: Recipe, snapshot: Any) -> SearchSpace:
    """Parse every --search and check it against the recipe's plugins; all problems at once."""
    if not searches:
        raise ParamError(
            "nothing to search: give at least one --search KIND.PARAM=...", path="--search"
        )
    model_manifest = snapshot.get("model", recipe.model.id).manifest
    params: list[SearchParam] = []
    problems: list[PeftlabError] = []
    for text in searches:
        try:
            parsed = parse_search(text)
            manifest = snapshot.get(parsed.kind, recipe.choice(parsed.kind).id).manifest
            params.append(_bounded(parsed, manifest, model_manifest, text))
        except PeftlabError as exc:
            problems.append(exc)
    keys = [p.key for p in params]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        problems.append(ParamError("searched twice", path="--search", field=duplicates[0]))
    if problems:
        first = problems[0]
        first.problems = [str(p) for p in problems]  # type: ignore[attr-defined]
        raise first
    return SearchSpace(tuple(params))


def _bounded(param: SearchParam, manifest: Any, model_manifest: Any, text: str) -> SearchParam:
    """The param typed by its declaration; a value or range end outside it raises ParamError."""
    where = "--search"
    spec = manifest.params.get(param.name)
    if spec is None:
        valid = ", ".join(sorted(manifest.params)) or "(none)"
        raise ParamError(
            f"{manifest.kind} '{manifest.id}' has no param '{param.name}'; valid: {valid}",
            path=where,
            field=param.key,
        )
    try:
        if param.is_range:
            if spec.type not in ("int", "float"):
                raise ParamError(f"a range needs a number param; '{param.name}' is {spec.type}")
            integer = spec.type == "int"
            for end in (param.low, param.high):
                if integer and end is not None and not float(end).is_integer():
                    raise ParamError(f"{end:g} is not an integer")
                check_value(param.name, spec, end, model=model_manifest)
            return SearchParam(**{**param.__dict__, "integer": integer})
        if spec.type == "multiselect":
            raise ParamError("a multiselect param cannot be searched; set it with --set")
        values = tuple(check_value(param.name, spec, v, model=model_manifest) for v in param.values)
        return SearchParam(param.kind, param.name, values=tuple(dict.fromkeys(values)))
    except ParamError as exc:
        raise ParamError(f"{exc.message} (in {text})", path=where, field=param.key) from None
