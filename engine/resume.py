"""A resumed run's records count the whole run, not only the part after the checkpoint.

The Trainer restarts at the checkpoint's step: steps logged after it by the stopped
session are trained (and logged) again, its `train_loss` averages only the steps of
the resumed session and `train_runtime` times only that session. Before a resume the
steps to be redone are dropped from metrics.jsonl and the stopped sessions' training
time is kept; after it, train_loss and train time are made whole-run figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel.runs import RunFolder, atomic_write_text


def checkpoint_step(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    tail = checkpoint.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def prepare_resume(run: RunFolder, checkpoint: Path | None) -> dict[str, Any]:
    """Drop metrics rows of steps past the checkpoint (they are trained again) and return
    what the stopped sessions leave to the whole-run figures."""
    step = checkpoint_step(checkpoint)
    metrics = run.path / "metrics.jsonl"
    if metrics.is_file():
        kept = [r for r in run.metrics() if not _is_step(r.get("step")) or r["step"] <= step]
        atomic_write_text(metrics, "".join(json.dumps(r, default=float) + "\n" for r in kept))
    status = run.status()
    prior = _number(status.get("prior_train_s")) + _number(run.progress().get("elapsed_s"))
    losses = _loss_sum(run.metrics(), step)
    return {"checkpoint_step": step, "prior_train_s": prior, "loss_sum_before": losses}


def whole_run_results(results: dict[str, Any], carry: dict[str, Any]) -> dict[str, Any]:
    """train_loss over every step of the run, train time over every session."""
    if not isinstance(results, dict):  # a trainer returning its own record type: leave it
        return results
    results = dict(results)
    before = int(carry.get("checkpoint_step") or 0)
    total = results.get("global_step")
    loss = results.get("train_loss")
    loss_sum = carry.get("loss_sum_before")
    if (
        isinstance(total, int)
        and _is_step(total)
        and total > before
        and isinstance(loss, int | float)
        and loss_sum is not None
    ):
        # the Trainer's train_loss is the mean over this session's steps only
        results["train_loss"] = (loss_sum + float(loss) * (total - before)) / total
    if isinstance(results.get("train_runtime_s"), int | float):
        results["train_runtime_s"] = float(results["train_runtime_s"]) + carry["prior_train_s"]
    results["sessions_train_s"] = carry["prior_train_s"]
    return results


def _loss_sum(rows: list[dict[str, Any]], up_to: int) -> float | None:
    """Sum of per-step training loss over steps 1..up_to from the logged interval means;
    None when the logs do not cover those steps."""
    logged = {r["step"]: float(r["loss"]) for r in rows if _is_step(r.get("step"))
              and isinstance(r.get("loss"), int | float) and r["step"] <= up_to}  # fmt: skip
    if up_to == 0:
        return 0.0
    if up_to not in logged:
        return None
    total, previous = 0.0, 0
    for step in sorted(logged):
        total += logged[step] * (step - previous)  # each logged loss is its interval's mean
        previous = step
    return total


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
