"""The live view of one run: progress, ETA, loss curves, results, cancel and resume.

It only reads the run folder (status.json, progress.json, metrics.jsonl,
results.json), so it shows runs started by this app, by the CLI, or before a
restart alike. A fragment reruns it every second without rerunning the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from engine.process import start_run
from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui import charts
from ui.views import _shared

LIVE_STATES = ("pending", "running")
#: terminal colour and cursor codes (ESC [ ... letter) that progress bars and loggers write
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
#: log lines written before the runner filtered them (see engine.runner.KNOWN_NOISE)
NOISE_STARTS = ("Failed to load CPU gemm_4bit_forward",)


def show_run(path: str, *, key: str = "run") -> None:
    """Draw a run; polls once a second while it may still change."""
    _live_run(path, key)


@st.fragment(run_every=1.0)
def _live_run(path: str, key: str) -> None:
    _shared.reap_processes()
    run = RunFolder(Path(path))
    if not run.path.is_dir():
        st.warning(f"run folder {path} is gone")
        return
    status = run.status()
    state = status.get("state", "pending")
    progress = run.progress()
    rows = run.metrics()

    head, actions = st.columns([4, 1])
    with actions:
        acted = _actions(run, state, key)
    if acted:
        status = run.status()
        state = status.get("state", "pending")
    head.markdown(f"**{run.id}** — {_state_badge(state)}")
    _progress(progress, state)
    _loss(run, rows, progress, state, key)
    _outcome(run, status, state)
    _settings(run)
    if run.log_file.is_file():
        with st.expander("log"):
            st.code(_tail(run.log_file), language="text")


def _actions(run: RunFolder, state: str, key: str) -> bool:
    """Cancel a live run; resume a stopped one that can continue from a checkpoint. True when
    a button was pressed, so the run's state is read again."""
    if state in LIVE_STATES:
        if st.button(
            "Cancel", key=f"{key}-cancel", help="Stop the process; checkpoints stay for resume"
        ):
            st.toast(f"{run.id}: {_shared.cancel_run(run)}")
            return True
    elif run.resumable():  # a deterministic failure would only fail the same way again
        if st.button("Resume", key=f"{key}-resume", help="Continue from the last checkpoint"):
            try:
                _shared.remember_process(run, start_run(run, resume=True))
            except PeftlabError as exc:
                st.error(str(exc))
            return True
    return False


def _progress(progress: dict[str, Any], state: str) -> None:
    """The progress bar: phase, step, epoch, ETA and elapsed time."""
    total = progress.get("total_steps") or 0
    step = progress.get("step") or 0
    fraction = min(max(step / total, 0.0), 1.0) if total else (1.0 if state == "completed" else 0.0)
    parts = [progress.get("phase", state)]
    if total:
        parts.append(f"step {step}/{total}")
    if progress.get("epoch") is not None:
        parts.append(f"epoch {float(progress['epoch']):.2f}")
    if state in LIVE_STATES and progress.get("eta_s") is not None:
        parts.append(f"ETA {_shared.format_seconds(progress['eta_s'])}")
    if progress.get("elapsed_s") is not None:
        parts.append(f"elapsed {_shared.format_seconds(progress['elapsed_s'])}")
    st.progress(fraction, text=" · ".join(str(p) for p in parts))


def _loss(
    run: RunFolder, rows: list[dict[str, Any]], progress: dict[str, Any], state: str, key: str
) -> None:
    """The loss curves so far, or a note that no step is logged yet."""
    total = progress.get("total_steps") or 0
    if rows:
        log_y = st.toggle("log-scale loss", key=f"{key}-log")
        st.plotly_chart(
            charts.loss_curves({run.id: rows}, log_y=log_y), key=f"{key}-loss", width="stretch"
        )
        logged = sum(1 for r in rows if "loss" in r)
        if state in LIVE_STATES and logged < 3 and total:
            step = progress.get("step") or 0
            st.caption(f"{logged} loss value(s) logged so far, at step {step} of {total}")
    elif state in LIVE_STATES:
        st.caption("waiting for the first logged step ...")


def _outcome(run: RunFolder, status: dict[str, Any], state: str) -> None:
    """A finished run's results, a failed run's error and traceback, or why it stopped."""
    if state == "completed":
        _results(run)
    elif state == "failed":
        st.error(status.get("error") or "the run failed")
        if status.get("traceback"):
            with st.expander("traceback"):
                st.code(status["traceback"])
    elif state == "interrupted":
        st.warning("interrupted: the process is gone; Resume continues from the last checkpoint")


@st.cache_data(show_spinner=False, max_entries=256)
def settings_of(path: str, state: str) -> dict[str, object]:
    """A run's settings with effective values (cached per state: resolving may import code)."""
    from engine.report import run_settings

    return run_settings(RunFolder(Path(path)))


def _settings(run: RunFolder) -> None:
    """The run's settings, with the effective value of every `0` or `auto` it recorded."""
    try:
        settings = settings_of(str(run.path), run.status().get("state", "pending"))
    except Exception as exc:  # noqa: BLE001 - a damaged recipe: say so, keep the view
        st.caption(f"cannot read the run's settings: {exc}")
        return
    with st.expander("settings (effective values)"):
        st.table({key: [str(value)] for key, value in settings.items() if "version" not in key})


def _results(run: RunFolder) -> None:
    results = run.results() or {}
    shown = [
        ("accuracy", "accuracy", "{:.3f}"),
        ("f1_macro", "F1 (macro)", "{:.3f}"),
        ("trainable_percent", "trainable %", "{:.3g}"),
        ("train_runtime_s", "train time", None),
        ("peak_memory_mb", "peak memory MB", "{:.0f}"),
    ]
    columns = st.columns(len(shown))
    for column, (field, label, fmt) in zip(columns, shown, strict=True):
        value = results.get(field)
        if value is None:
            text = "-"
        elif fmt is None:
            text = _shared.format_seconds(value)
        else:
            text = fmt.format(value)
        delta = None
        if (
            field == "accuracy"
            and results.get("baseline_accuracy") is not None
            and value is not None
        ):
            delta = f"{value - results['baseline_accuracy']:+.3f} vs. untrained"
        column.metric(label, text, delta)


def _state_badge(state: str) -> str:
    colour = {"completed": "green", "failed": "red", "running": "blue", "interrupted": "orange"}
    return f":{colour.get(state, 'gray')}[{state}]"


def clean_log(text: str) -> str:
    """A log as plain text: colour codes removed, known noise dropped, carriage-return
    progress redraws reduced to their last state."""
    kept = []
    for line in ANSI_RE.sub("", text).split("\n"):  # not splitlines: it splits at \r too
        line = line.rsplit("\r", 1)[-1]
        if not line.lstrip().startswith(NOISE_STARTS):
            kept.append(line)
    return "\n".join(kept).rstrip("\n")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"cannot read the log: {exc}"
    return "\n".join(clean_log(text).splitlines()[-lines:])
