"""Runs page, one run's tools: name, notes and tags; delete; export (adapter archive, merge
into the base, combine adapters); and its evaluation on the validation split.

Each action is one engine call (engine.manage, engine.export, engine.adapters,
engine.examine); this module only draws their inputs and outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from engine import manage
from engine.export import adapter_archive, folder_archive
from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui import charts

EXAMINED_KEY = "peftlab.examined"


def tools(run: RunFolder, rows: list[dict[str, Any]]) -> None:
    """The tabs under a run's view."""
    about, export, evaluation, danger = st.tabs(
        ["Name, notes, tags", "Export", "Evaluation", "Delete"]
    )
    with about:
        _about(run)
    with export:
        _export(run, rows)
    with evaluation:
        _evaluation(run)
    with danger:
        _delete(run)


def _about(run: RunFolder) -> None:
    meta = manage.read_meta(run)
    with st.form(key=f"meta-{run.id}", border=False):
        name = st.text_input("Name", value=meta.name, placeholder=run.id, key=f"meta-name-{run.id}")
        tags = st.text_input(
            "Tags (comma-separated)", value=", ".join(meta.tags), key=f"meta-tags-{run.id}"
        )
        notes = st.text_area("Notes", value=meta.notes, key=f"meta-notes-{run.id}")
        if st.form_submit_button("Save"):
            try:
                manage.update_meta(run, name=name, notes=notes, tags=manage.parse_tags(tags))
            except PeftlabError as exc:
                st.error(str(exc))
            else:
                st.toast(f"saved the notes of {run.id}")
                st.rerun()


def _delete(run: RunFolder) -> None:
    st.caption(f"Deletes {run.path} with its adapter, checkpoints and logs. This cannot be undone.")
    sure = st.checkbox(f"Yes, delete {run.id}", key=f"delete-sure-{run.id}")
    if st.button("Delete run", key=f"delete-{run.id}", disabled=not sure, type="primary"):
        try:
            manage.delete_run(run)
        except PeftlabError as exc:
            st.error(str(exc))
            return
        st.session_state.pop("run_detail", None)
        st.toast(f"deleted {run.id}")
        st.rerun()


def _export(run: RunFolder, rows: list[dict[str, Any]]) -> None:
    if run.status().get("state") != "completed" or not run.adapter_dir.is_dir():
        st.caption("Export needs a completed run with a trained adapter.")
        return
    st.download_button(  # the archive is packed when the button is clicked
        "Download adapter (.zip)",
        lambda: adapter_archive(run)[1],
        file_name=f"{run.id}-adapter.zip",
        mime="application/zip",
        key="dl-adapter",
        on_click="ignore",
    )
    st.caption("The adapter folder as `peftlab export RUN` copies it; load it with peft.")
    merged = run.path / "merged"
    if st.button("Merge into the base model", key="merge", help="peft merge_and_unload, checked"):
        _merge(run, merged)
    if merged.is_dir() and any(merged.iterdir()):
        st.download_button(
            "Download merged model (.zip)",
            lambda: folder_archive(merged, f"{run.id}-merged"),
            file_name=f"{run.id}-merged.zip",
            mime="application/zip",
            key="dl-merged",
            on_click="ignore",
        )
    _combine(run, rows)


def _merge(run: RunFolder, out_dir: Path) -> None:
    from engine.adapters import export_merged

    try:
        with st.spinner("merging the adapter into its base ..."):
            check = export_merged(run, out_dir)
    except PeftlabError as exc:
        st.error(str(exc))
        return
    except (OSError, ValueError, RuntimeError) as exc:
        st.error(f"cannot merge run {run.id}: {exc}")
        return
    st.success(
        f"merged {check.technique} model saved to {check.out_dir}; logits vs base + adapter: "
        f"max abs diff {check.max_abs_diff:.3g}"
    )


def _combine(run: RunFolder, rows: list[dict[str, Any]]) -> None:
    others = [
        r["run"]
        for r in rows
        if r["run"] != run.id and r["state"] == "completed" and r["model"] == _model(run)
    ]
    if not others:
        return
    with st.expander("Combine with other adapters of the same base"):
        picked = st.multiselect("Other runs", others, key=f"combine-{run.id}")
        method = st.selectbox("Method", ["linear", "cat", "svd"], key=f"combine-method-{run.id}")
        if st.button("Combine", key=f"combine-go-{run.id}", disabled=not picked):
            _combine_runs([run, *(RunFolder(run.path.parent / i) for i in picked)], method)


def _model(run: RunFolder) -> str:
    try:
        return run.record().model.id
    except Exception:  # noqa: BLE001 - a damaged recipe combines with nothing
        return ""


def _combine_runs(runs: list[RunFolder], method: str) -> None:
    from engine.adapters import combine_adapters

    out_dir = runs[0].path / f"combined-{'-'.join(r.id[-6:] for r in runs[1:])}-{method}"
    try:
        with st.spinner("combining adapters ..."):
            result = combine_adapters(runs, out_dir, method=method)
    except PeftlabError as exc:
        st.error(str(exc))
        return
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        st.error(f"peft could not combine these adapters: {exc}")
        return
    st.success(f"combined ({result.method}) adapter saved to {result.out_dir}")
    st.download_button(
        "Download combined adapter (.zip)",
        lambda: folder_archive(result.out_dir),
        file_name=f"{result.out_dir.name}.zip",
        mime="application/zip",
        key="dl-combined",
        on_click="ignore",
    )


def _evaluation(run: RunFolder) -> None:
    if run.status().get("state") != "completed":
        st.caption("Evaluation needs a completed run.")
        return
    store = st.session_state.setdefault(EXAMINED_KEY, {})
    if st.button("Evaluate on the validation split", key=f"examine-{run.id}"):
        from engine.examine import examine_run

        try:
            with st.spinner("predicting the validation split ..."):
                store[run.id] = examine_run(run)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be rebuilt says why
            st.error(f"cannot evaluate {run.id}: {exc}")
            return
    report = store.get(run.id)
    if report is not None:
        show_report(report)


def show_report(report: Any) -> None:
    """A classification report (confusion, per class, worst) or a generation report."""
    if hasattr(report, "confusion"):
        st.caption(f"{report.examples} validation examples · accuracy {report.accuracy:.3f}")
        left, right = st.columns(2)
        left.plotly_chart(
            charts.confusion_matrix(report.confusion, report.label_names),
            key="confusion",
            width="stretch",
        )
        right.dataframe(pd.DataFrame(report.per_class), hide_index=True, key="per-class")
        st.markdown("**Most confidently wrong**")
        if report.worst:
            st.dataframe(pd.DataFrame(report.worst), hide_index=True, key="worst", width="stretch")
        else:
            st.caption("Every example is classified correctly.")
        return
    st.caption(f"{report.examples} validation examples · mean ROUGE-L {report.mean_rouge_l:.3f}")
    st.dataframe(pd.DataFrame(report.rows), hide_index=True, key="outputs", width="stretch")
