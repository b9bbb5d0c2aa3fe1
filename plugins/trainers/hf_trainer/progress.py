"""A TrainerCallback that turns the Trainer's events into the run folder's progress and metrics."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback


class RunProgress(TrainerCallback):
    """Writes progress.json (throttled) and forwards every log line to metrics.jsonl."""

    def __init__(self, reporter: Any, started: float, min_interval_s: float = 0.5) -> None:
        self.reporter = reporter
        self.started = started
        self.min_interval_s = min_interval_s
        self.train_started = started
        self.first_step = 0
        self.first_tokens = 0
        self._last_write = 0.0

    def report(self, phase: str, state: Any | None = None, **extra: Any) -> None:
        step = state.global_step if state is not None else 0
        total = state.max_steps if state is not None and state.max_steps else None
        now = time.time()
        eta = None
        done = step - self.first_step
        if total and done > 0 and phase == "training":
            eta = (now - self.train_started) / done * (total - step)
        self.reporter.set_progress(
            phase=phase,
            step=step,
            total_steps=total,
            epoch=round(state.epoch, 4) if state is not None and state.epoch is not None else None,
            eta_s=round(eta, 1) if eta is not None else None,
            elapsed_s=round(now - self.started, 1),
            **extra,
        )
        self._last_write = now

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # after a resume, global_step starts at the checkpoint: the ETA counts this session only
        self.train_started = time.time()
        self.first_step = state.global_step
        self.first_tokens = state.num_input_tokens_seen
        self.report("training", state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_evaluate:
            self.report("evaluating", state)
        elif (
            time.time() - self._last_write >= self.min_interval_s
            or state.global_step >= state.max_steps
        ):
            self.report("training", state)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_evaluate:
            self.report("evaluating", state)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.max_steps and state.global_step < state.max_steps:
            self.report("training", state)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not logs:
            return
        record: dict[str, Any] = {"step": state.global_step}
        if state.epoch is not None:
            record["epoch"] = round(state.epoch, 4)
        for key, value in logs.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value
        self.reporter.log_metrics(record)
