"""Choose a run: rank runs by a metric under cost limits, mark the Pareto front of quality
against cost, and say in one sentence which run to keep and why.

A run's score comes from a held-out evaluation when one is asked for
(`engine.evaluate`), else from its results.json (the validation split). Accuracy
carries its standard error (from the evaluation, or sqrt(p(1 - p) / n) over the
validation rows); scores within 1.96 standard errors of the difference of the best
are ties, and among tied runs the cheapest is recommended (fewest trainable
parameters, then peak memory, train time, saved weights). Costs: `COSTS`, lower
is better. A run is on the Pareto front when no other run scores at least as well
at no more of every cost and strictly better in one of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.metrics import Interval, is_tie

#: the costs a run is judged on, lower is better, with how they are shown
COSTS = {
    "trainable_percent": "trainable %",
    "peak_memory_mb": "peak memory (MiB)",
    "train_runtime_s": "train time (s)",
    "adapter_size_mb": "saved weights (MiB)",
}
#: metrics where lower is better (everything else: higher is better)
LOWER_IS_BETTER = {"eval_loss", "train_loss", "perplexity", "ece", "latency_ms"}


@dataclass(frozen=True)
class Constraints:
    """Limits a run must meet to be ranked (None: no limit)."""

    max_trainable_percent: float | None = None
    max_memory_mb: float | None = None
    max_train_time_s: float | None = None

    def violations(self, costs: Mapping[str, float | None]) -> list[str]:
        limits = (
            ("trainable_percent", self.max_trainable_percent, "{:.4g} % trainable > {:g} %"),
            ("peak_memory_mb", self.max_memory_mb, "{:,.0f} MiB peak > {:g} MiB"),
            ("train_runtime_s", self.max_train_time_s, "{:,.1f} s training > {:g} s"),
        )
        found = []
        for key, limit, text in limits:
            if limit is None:
                continue
            value = costs.get(key)
            if value is None:
                found.append(f"no {COSTS[key]} recorded")
            elif value > limit:
                found.append(text.format(value, limit))
        return found


@dataclass
class Candidate:
    """One run as the choice sees it."""

    run_id: str
    label: str
    score: Interval | None
    costs: dict[str, float | None] = field(default_factory=dict)
    excluded: str | None = None
    on_front: bool = False
    rank: int | None = None
    tied_with_best: bool = False


@dataclass
class Choice:
    metric: str
    source: str
    candidates: list[Candidate]
    recommended: Candidate | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def validation_score(results: Mapping[str, Any], metric: str) -> Interval | None:
    """A metric from results.json; accuracy with the binomial standard error of its rows."""
    value = results.get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    value = float(value)
    rows = results.get("num_eval_samples")
    stderr = 0.0
    if metric in ("accuracy", "baseline_accuracy") and isinstance(rows, int) and rows > 1:
        stderr = math.sqrt(max(value * (1 - value), 0.0) / rows)
    return Interval(value, stderr, value - 1.96 * stderr, value + 1.96 * stderr)


def candidate(
    run_id: str, label: str, results: Mapping[str, Any], score: Interval | None
) -> Candidate:
    costs = {key: _number(results.get(key)) for key in COSTS}
    return Candidate(run_id, label, score, costs)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _quality(c: Candidate, metric: str) -> float:
    assert c.score is not None
    return -c.score.value if metric in LOWER_IS_BETTER else c.score.value


def _dominates(a: Candidate, b: Candidate, metric: str, costs: Sequence[str]) -> bool:
    costs_a = [a.costs.get(k) for k in costs]
    costs_b = [b.costs.get(k) for k in costs]
    pairs = [(x, y) for x, y in zip(costs_a, costs_b, strict=True) if y is not None]
    if any(x is None or x > y for x, y in pairs):
        return False
    qa, qb = _quality(a, metric), _quality(b, metric)
    return qa >= qb and (qa > qb or any(x < y for x, y in pairs if x is not None))


def mark_front(
    candidates: Sequence[Candidate], metric: str, costs: Sequence[str] = tuple(COSTS)
) -> None:
    """Set `on_front` on the scored candidates no other scored candidate dominates
    (judged on `costs`: all of them by default, one for a two-axis chart)."""
    scored = [c for c in candidates if c.score is not None and not c.excluded]
    for c in scored:
        c.on_front = not any(_dominates(o, c, metric, costs) for o in scored if o is not c)


def _cost_key(c: Candidate) -> tuple[float, ...]:
    return tuple(math.inf if c.costs.get(k) is None else c.costs[k] for k in COSTS)  # type: ignore[misc]


def choose(
    candidates: Sequence[Candidate],
    metric: str,
    constraints: Constraints | None = None,
    *,
    source: str = "validation split",
) -> Choice:
    """Rank, mark the front and recommend (see the module docstring)."""
    constraints = constraints or Constraints()
    pool = list(candidates)
    for c in pool:
        if c.excluded:
            continue
        if c.score is None:
            c.excluded = f"no {metric} recorded"
        elif broken := constraints.violations(c.costs):
            c.excluded = "; ".join(broken)
    eligible = sorted((c for c in pool if not c.excluded), key=lambda c: -_quality(c, metric))
    mark_front(eligible, metric)
    for rank, c in enumerate(eligible, start=1):
        c.rank = rank
    ordered = eligible + [c for c in pool if c.excluded]
    if not eligible:
        return Choice(metric, source, ordered, None, _none_sentence(pool, metric))
    best = eligible[0]
    tied = [c for c in eligible if is_tie(best.score, c.score)]  # type: ignore[arg-type]
    for c in tied:
        c.tied_with_best = True
    pick = min(tied, key=_cost_key)
    return Choice(metric, source, ordered, pick, _sentence(pick, best, tied, eligible, metric))


def _show(c: Candidate) -> str:
    assert c.score is not None
    noise = f" ± {c.score.stderr:.4f}" if c.score.stderr else ""
    return f"{c.score.value:.4f}{noise}"


def _sentence(
    pick: Candidate, best: Candidate, tied: list[Candidate], eligible: list[Candidate], metric: str
) -> str:
    name = f"{pick.label} ({pick.run_id})"
    count = f"{len(eligible)} run(s) that meet the constraints"
    if len(tied) == 1:
        if len(eligible) == 1:
            return f"Recommended: {name}, {metric} {_show(pick)}, the only one of the {count}."
        second = eligible[1]
        assert pick.score is not None and second.score is not None
        gap = abs(pick.score.value - second.score.value)
        return (
            f"Recommended: {name}, best {metric} {_show(pick)} of the {count}, ahead of "
            f"{second.label} by {gap:.4f}, more than the noise."
        )
    others = ", ".join(c.label for c in tied if c is not pick)
    cost = pick.costs.get("trainable_percent")
    cheap = f"{cost:.4g} % trainable" if cost is not None else "lowest recorded cost"
    lead = "" if pick is best else f" (best: {best.label} {_show(best)})"
    return (
        f"Recommended: {name}, {metric} {_show(pick)}{lead}: a tie within the noise with "
        f"{others}, and the cheapest of them ({cheap})."
    )


def _none_sentence(pool: list[Candidate], metric: str) -> str:
    if not pool:
        return "No runs to choose from."
    reasons = "; ".join(f"{c.label} ({c.run_id}): {c.excluded}" for c in pool[:5])
    return f"No run can be recommended by {metric}: {reasons}."


def candidates_from_runs(
    runs: Sequence[Any], metric: str, data_hash: str | Mapping[str, str] | None = None
) -> list[Candidate]:
    """Completed runs as candidates: scored on the evaluation of `data_hash` (a hash or its
    prefix, or one per run id), else on their validation split. Unfinished runs are left out."""
    from engine.evaluate_results import find_evaluation

    found = []
    for run in runs:
        if run.status().get("state") != "completed" or not run.results():
            continue
        results = run.results() or {}
        label = str(results.get("technique") or run.record().technique.id)
        if data_hash is None:
            found.append(candidate(run.id, label, results, validation_score(results, metric)))
            continue
        wanted = data_hash if isinstance(data_hash, str) else data_hash.get(run.id, "")
        evaluation = find_evaluation(run, wanted) if wanted else None
        entry = candidate(run.id, label, results, evaluation.score(metric) if evaluation else None)
        if evaluation is None:
            entry.excluded = "not evaluated on this data (peftlab evaluate)"
        found.append(entry)
    return found
