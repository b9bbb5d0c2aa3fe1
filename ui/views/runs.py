"""Runs & compare: every run folder (filtered), the queue, plots across the chosen runs of one
dataset, their settings diff with effective values, and one run's view with its tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from engine import effective, manage, queue
from engine.report import settings_diff
from kernel.runs import RunFolder
from ui import charts
from ui.views import _run_tools, _run_view, _shared, _variants

TABLE_COLUMNS = [
    "name",
    "state",
    "technique",
    "model",
    "dataset",
    "learning_rate",
    "accuracy",
    "f1_macro",
    "trainable_percent",
    "train_runtime_s",
    "peak_memory_mb",
    "tags",
    "problem",
    "run",
]
FILTERS = ("dataset", "model", "technique", "state", "tags")
TEXT_COLUMNS = ("name", "state", "technique", "model", "dataset", "run")
MAX_DEFAULT_COMPARED = 6


def main() -> None:
    st.title("Runs & compare")
    folder = _shared.runs_dir()
    rows = [_with_meta(row) for row in _shared.run_rows(folder)]
    _queue_section(folder)
    if not rows:
        st.info(f"No runs in {folder} yet. Start one on the Train page or with `peftlab train`.")
        return
    shown = _filtered(rows)
    st.caption(f"{len(shown)} of {len(rows)} run(s) in {folder}")
    _table(shown)

    by_id = {r["run"]: r for r in rows}
    _compare_section(rows, by_id)

    st.subheader("One run")
    ids = [r["run"] for r in shown] or [r["run"] for r in rows]
    one = st.selectbox("Run", ids, key="run_detail", format_func=lambda i: by_id[i]["label"])
    if by_id[one]["state"] == "damaged":  # nothing more can be read from it than the reason
        st.warning(f"run {one} is damaged: {by_id[one]['problem']}")
        return
    _run_view.show_run(by_id[one]["path"], key="runs-detail")
    _run_tools.tools(RunFolder(Path(by_id[one]["path"])), [by_id[i] for i in ids])


def _with_meta(row: dict[str, Any]) -> dict[str, Any]:
    """A runs-table row plus its meta (name, tags) and effective learning rate."""
    run = RunFolder(Path(row["path"]))
    meta = manage.read_meta(run)
    row = dict(row)
    row["name"] = meta.name or run.id
    row["tags"] = meta.tags
    row["learning_rate"] = _learning_rate(row["path"], row["state"])
    row["label"] = f"{row['name']} · {row['technique']}" if meta.name else row["run"]
    return row


@st.cache_data(show_spinner=False, max_entries=512)
def _learning_rate(path: str, state: str) -> float | None:
    """The rate a run used (cached per run and state: resolving it may import the technique)."""
    try:
        settings = effective.for_run(RunFolder(Path(path)))
    except Exception:  # a damaged run folder: no rate to show
        return None
    if "trainer.learning_rate" in settings:
        return float(settings["trainer.learning_rate"])
    try:
        recorded = RunFolder(Path(path)).record().trainer.params.get("learning_rate")
    except Exception:  # noqa: BLE001 - a damaged recipe is listed without a rate
        return None
    return float(recorded) if isinstance(recorded, int | float) else None


def _queue_section(folder: Path) -> None:
    waiting = queue.queued(folder)
    if not waiting:
        return
    st.subheader(f"Queue ({len(waiting)} waiting)")
    active = queue.active_runs(folder)
    st.caption(
        f"Training now: {', '.join(r.id for r in active) or 'nothing'}. "
        "Queued runs start one at a time, in this order."
    )
    for place, run in enumerate(waiting, start=1):
        left, right = st.columns([5, 1])
        left.markdown(f"{place}. `{run.id}`")
        if right.button("Remove", key=f"dequeue-{run.id}", help="Take it off the queue"):
            queue.dequeue(run)
            st.rerun()


def _filtered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns = st.columns(len(FILTERS))
    chosen: dict[str, list[str]] = {}
    for column, name in zip(columns, FILTERS, strict=True):
        if name == "tags":
            options = sorted({t for r in rows for t in r["tags"]})
        else:
            options = sorted({str(r[name]) for r in rows if r.get(name)})
        chosen[name] = column.multiselect(name, options, key=f"filter-{name}")
    return [r for r in rows if manage.matches(r, chosen)]


def _table(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for name in TEXT_COLUMNS:  # a failed run has no results: show blanks, not None
        frame[name] = frame[name].fillna("")
    frame["tags"] = frame["tags"].map(lambda tags: ", ".join(tags or []))
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        # the id is the name until a run is renamed: it is kept in the data, not shown twice
        column_order=[c for c in TABLE_COLUMNS if c != "run"],
        column_config={
            "name": st.column_config.TextColumn("name", width="medium"),
            "state": st.column_config.TextColumn("state", width="small"),
            "model": st.column_config.TextColumn("model", width="small"),
            "learning_rate": st.column_config.NumberColumn("learning rate", format="%g"),
            "accuracy": st.column_config.NumberColumn(format="%.3f"),
            "f1_macro": st.column_config.NumberColumn("F1 (macro)", format="%.3f"),
            "trainable_percent": st.column_config.NumberColumn("trainable %", format="%.3g"),
            "train_runtime_s": st.column_config.NumberColumn("time (s)", format="%.1f"),
            "peak_memory_mb": st.column_config.NumberColumn("memory (MB)", format="%.0f"),
        },
    )


# compare ----------------------------------------------------------------------------------


def group_of(row: dict[str, Any]) -> str:
    """Runs are compared within one dataset: accuracies of two datasets share no axis."""
    return str(row["dataset"] or "?")


def _compare_section(rows: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> None:
    st.subheader("Compare")
    requested = [i for i in st.session_state.get(_variants.COMPARE_KEY, []) if i in by_id]
    groups = sorted({group_of(r) for r in rows})
    completed = [r for r in rows if r["state"] == "completed"]
    if requested:
        default_group = group_of(by_id[requested[0]])
    else:  # the dataset of the newest completed run
        default_group = group_of((completed or rows)[0])
    if st.session_state.get("compare_group") not in groups or requested:
        st.session_state["compare_group"] = default_group
    group = st.selectbox("Dataset", groups, key="compare_group")
    members = [r for r in rows if group_of(r) == group]
    ids = [r["run"] for r in members]
    if requested:
        default = [i for i in requested if i in ids]
        st.session_state.pop(_variants.COMPARE_KEY, None)
        st.session_state["compare_runs"] = default
    elif "compare_runs" in st.session_state:
        st.session_state["compare_runs"] = [i for i in st.session_state["compare_runs"] if i in ids]
    if not st.session_state.get("compare_runs"):
        done = [r["run"] for r in members if r["state"] == "completed"]
        st.session_state["compare_runs"] = done[:MAX_DEFAULT_COMPARED] or ids[:1]
    picked = st.multiselect(
        "Compare runs", ids, key="compare_runs", format_func=lambda i: by_id[i]["label"]
    )
    if picked:
        _compare([by_id[i] for i in picked])


def point_labels(rows: list[dict[str, Any]]) -> dict[str, str]:
    """run id -> a label that tells the chosen runs apart: the technique, plus the learning
    rate or the run's name where the technique repeats."""
    labels = {}
    for row in rows:
        same = [r for r in rows if r["technique"] == row["technique"]]
        if len(same) == 1:
            labels[row["run"]] = str(row["technique"])
            continue
        rates = [r.get("learning_rate") for r in same]
        if None not in rates and len(set(rates)) == len(rates):
            labels[row["run"]] = f"{row['technique']} lr={row['learning_rate']:g}"
        else:
            labels[row["run"]] = f"{row['technique']} · {row['name']}"
    return labels


def _compare(rows: list[dict[str, Any]]) -> None:
    labels = point_labels(rows)
    named = [{**r, "technique": labels[r["run"]]} for r in rows]
    finished = [r for r in named if r.get("accuracy") is not None]
    left, right = st.columns(2)
    with left:
        if finished:
            st.plotly_chart(charts.accuracy_vs_trainable(finished), key="cmp-acc", width="stretch")
        else:
            st.caption("No finished run among these yet: accuracy plots appear when one completes.")
    with right:
        log_y = st.toggle("log-scale loss", key="cmp-log")
        curves = {labels[r["run"]]: RunFolder(Path(r["path"])).metrics() for r in rows}
        st.plotly_chart(charts.loss_curves(curves, log_y=log_y), key="cmp-loss", width="stretch")
    if finished:
        left, right = st.columns(2)
        with left:
            st.plotly_chart(
                charts.bar(finished, "train_runtime_s", "Training time", "seconds"),
                key="cmp-time",
                width="stretch",
            )
        with right:
            st.plotly_chart(
                charts.bar(finished, "peak_memory_mb", "Peak memory", "MB"),
                key="cmp-mem",
                width="stretch",
            )
    _diff(rows, labels)


def _diff(rows: list[dict[str, Any]], labels: dict[str, str]) -> None:
    st.markdown("**Config diff** (effective values: what `0` and `auto` stood for)")
    settings = {}
    for row in rows:
        try:
            settings[labels[row["run"]]] = _run_view.settings_of(row["path"], row["state"])
        except Exception as exc:  # an unreadable recipe is shown, not fatal
            settings[labels[row["run"]]] = {"error": str(exc)}
    diff = settings_diff(settings)
    if len(rows) < 2:
        st.caption("Pick two or more runs to see what differs between them.")
    elif not diff:
        st.caption("The selected runs have identical settings.")
    else:
        # a table, not a data grid: a few rows, read whole, and searchable text in the page
        st.table(pd.DataFrame.from_dict(diff, orient="index", columns=list(settings)))


main()
