"""Runs & compare: every run folder, plots across the chosen runs, and their config diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from kernel.recipe import RECIPE_KINDS
from kernel.runs import RunFolder
from ui import charts
from ui.pages import _run_view, _shared

TABLE_COLUMNS = [
    "run",
    "state",
    "technique",
    "model",
    "dataset",
    "accuracy",
    "f1_macro",
    "trainable_percent",
    "train_runtime_s",
    "peak_memory_mb",
    "problem",
]


def main() -> None:
    st.title("Runs & compare")
    folder = _shared.runs_dir()
    rows = _shared.run_rows(folder)
    if not rows:
        st.info(f"No runs in {folder} yet. Start one on the Train page or with `peftlab train`.")
        return
    st.caption(f"{len(rows)} run(s) in {folder}")
    st.dataframe(
        pd.DataFrame(rows, columns=TABLE_COLUMNS),
        hide_index=True,
        width="stretch",
        column_config={
            "accuracy": st.column_config.NumberColumn(format="%.3f"),
            "f1_macro": st.column_config.NumberColumn("F1 (macro)", format="%.3f"),
            "trainable_percent": st.column_config.NumberColumn("trainable %", format="%.3g"),
            "train_runtime_s": st.column_config.NumberColumn("train time (s)", format="%.1f"),
            "peak_memory_mb": st.column_config.NumberColumn("peak memory (MB)", format="%.0f"),
        },
    )

    ids = [r["run"] for r in rows]
    by_id = {r["run"]: r for r in rows}
    default = [r["run"] for r in rows if r["state"] == "completed"][:6] or ids[:1]
    if "compare_runs" in st.session_state:
        st.session_state["compare_runs"] = [i for i in st.session_state["compare_runs"] if i in ids]
    else:
        st.session_state["compare_runs"] = st.session_state.get("peftlab.compare_runs", default)
    picked = st.multiselect("Compare runs", ids, key="compare_runs")
    st.session_state["peftlab.compare_runs"] = picked
    if picked:
        _compare([by_id[i] for i in picked])

    st.subheader("One run")
    one = st.selectbox("Run", ids, key="run_detail")
    if by_id[one]["state"] == "damaged":  # nothing more can be read from it than the reason
        st.warning(f"run {one} is damaged: {by_id[one]['problem']}")
        return
    _run_view.show_run(by_id[one]["path"], key="runs-detail")


def _compare(rows: list[dict[str, Any]]) -> None:
    runs = {r["run"]: RunFolder(Path(r["path"])) for r in rows}
    finished = [r for r in rows if r.get("accuracy") is not None]
    left, right = st.columns(2)
    with left:
        if finished:
            st.plotly_chart(charts.accuracy_vs_trainable(finished), key="cmp-acc", width="stretch")
        else:
            st.caption("No finished run among these yet: accuracy plots appear when one completes.")
    with right:
        log_y = st.toggle("log-scale loss", key="cmp-log")
        curves = {name: run.metrics() for name, run in runs.items()}
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

    st.markdown("**Config diff**")
    recipes = {}
    for name, run in runs.items():
        try:
            recipes[name] = flatten_recipe(run.recipe())
        except Exception as exc:  # an unreadable recipe is shown, not fatal
            recipes[name] = {"error": str(exc)}
    diff = config_diff(recipes)
    if len(runs) < 2:
        st.caption("Pick two or more runs to see what differs between them.")
    elif diff.empty:
        st.caption("The selected runs have identical recipes.")
    else:
        st.dataframe(diff, width="stretch")


def flatten_recipe(record: dict[str, Any]) -> dict[str, Any]:
    """kind -> plugin id, and kind.param -> value, from a run's recipe.yaml."""
    flat: dict[str, Any] = {}
    for kind in RECIPE_KINDS:
        entry = record.get(kind) or {}
        flat[kind] = entry.get("id")
        flat[f"{kind} version"] = entry.get("version")
        for name, value in (entry.get("params") or {}).items():
            flat[f"{kind}.{name}"] = value
    return flat


def config_diff(recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows are settings whose values differ between the runs; columns are runs."""
    keys = sorted({k for flat in recipes.values() for k in flat})
    rows = {}
    for key in keys:
        values = [recipes[name].get(key, "—") for name in recipes]
        if len({repr(v) for v in values}) > 1:
            rows[key] = [_cell(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(recipes))


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


main()
