"""Datasets: upload a CSV or JSONL file, preview it, map its columns, and train on it.

Saved files go to <data dir>/datasets under a sanitised name; the uploaded name
is never used as a path. Training uses whichever dataset plugin reads a local
file (a `path` param plus `text_column` and `label_column`), with those preset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.uploads import (  # noqa: F401 - names this page has always offered
    MAX_LABELS,
    SUFFIXES,
    columns_file,
    read_table,
    sanitize_name,
    target_path,
)
from kernel.manifest import Manifest
from ui import forms
from ui.views import _shared

FILE_PARAMS = ("path", "text_column", "label_column")
#: more distinct labels than this, or nearly one per row, looks like a free-text column
PLAUSIBLE_LABELS = 20


def _mean_length(column: pd.Series) -> float:
    values = column.dropna()
    if values.empty or not all(isinstance(v, str) for v in values.head(200)):
        return 0.0
    return float(values.astype(str).str.len().mean())


def guess_text_column(table: pd.DataFrame) -> str:
    """A column named text, else the string column with the longest values on average."""
    columns = [str(c) for c in table.columns]
    if "text" in columns:
        return "text"
    lengths = {str(c): _mean_length(table[c]) for c in table.columns}
    best = max(columns, key=lambda c: lengths[c])
    return best if lengths[best] > 0 else columns[0]


def guess_label_column(table: pd.DataFrame, text_column: str) -> str:
    """A column named label, else the other column with the fewest distinct values (two or more)."""
    columns = [str(c) for c in table.columns if str(c) != text_column]
    if "label" in columns:
        return "label"
    counts = {str(c): table[c].nunique(dropna=True) for c in table.columns}
    usable = [c for c in columns if counts[c] >= 2] or columns
    return min(usable, key=lambda c: (counts[c], columns.index(c)))


def column_warnings(table: pd.DataFrame, text_column: str, label_column: str) -> list[str]:
    """Choices that are allowed but probably wrong: a non-text text column, a free-text label."""
    warnings = []
    if _mean_length(table[text_column]) == 0:
        warnings.append(f"the text column '{text_column}' holds no text (numbers or empty)")
    distinct = table[label_column].nunique(dropna=True)
    rows = max(len(table[label_column].dropna()), 1)
    if distinct > PLAUSIBLE_LABELS or (distinct > 2 and distinct / rows > 0.5):
        warnings.append(
            f"the label column '{label_column}' has {distinct} distinct values in {rows} rows: "
            "it looks like free text, not a label"
        )
    return warnings


def write_columns(path: Path, text_column: str, label_column: str) -> None:
    """Remember which columns hold the text and the label, next to the file."""
    columns_file(path).write_text(json.dumps({"text": text_column, "label": label_column}))


def read_columns(path: Path) -> dict[str, str]:
    try:
        data = json.loads(columns_file(path).read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: str(v) for k, v in data.items() if k in ("text", "label")}
        if isinstance(data, dict)
        else {}
    )


def file_dataset_plugins() -> list[Manifest]:
    """Dataset plugins that read a local file with named text and label columns."""
    found = []
    for bundle in _shared.kernel().snapshot.of_kind("dataset"):
        params = bundle.manifest.params
        if all(p in params for p in FILE_PARAMS) and params["path"].type == "path":
            found.append(bundle.manifest)
    return found


def main() -> None:
    st.title("Datasets")
    folder = _shared.datasets_dir()
    plugins = file_dataset_plugins()
    if not plugins:
        st.warning(
            "No dataset plugin reads local files (one with path, text_column and label_column params)."
        )

    upload = st.file_uploader("CSV or JSONL file", type=list(SUFFIXES), key="upload")
    if upload is not None:
        _upload(upload, folder, plugins)

    st.subheader("Saved datasets")
    saved = (
        sorted(p for p in folder.glob("*") if p.suffix in (".csv", ".jsonl"))
        if folder.is_dir()
        else []
    )
    if not saved:
        st.caption(f"None yet in {folder}.")
    for path in saved:
        meta = read_columns(path)
        left, right = st.columns([4, 1])
        left.markdown(
            f"`{path.name}` · {path.stat().st_size / 1024:.1f} KB · "
            f"text: `{meta.get('text', 'text')}`, label: `{meta.get('label', 'label')}`"
        )
        if plugins:
            right.button(
                "Use for training",
                key=f"use-{path.name}",
                on_click=_use,
                args=(
                    plugins[0].id,
                    str(path),
                    meta.get("text", "text"),
                    meta.get("label", "label"),
                ),
            )
    message = st.session_state.pop("peftlab.data_message", None)
    if message:
        st.success(message)
        st.page_link("views/train.py", label="Go to Train", icon=":material/arrow_forward:")


def _upload(upload: object, folder: Path, plugins: list[Manifest]) -> None:
    suffix = SUFFIXES[Path(upload.name).suffix.lstrip(".").lower()]
    data = upload.getvalue()
    try:
        table = read_table(data, suffix)
    except Exception as exc:  # pandas raises many kinds for a malformed file
        st.error(f"cannot read {upload.name}: {exc}")
        return
    st.caption(f"{len(table)} rows, {len(table.columns)} columns")
    st.dataframe(table.head(20), width="stretch")
    columns = [str(c) for c in table.columns]
    if len(columns) < 2:
        st.error("the file needs at least two columns: a text and a label")
        return
    text_guess = guess_text_column(table)
    label_guess = guess_label_column(table, text_guess)
    # one set of widgets per uploaded file: a second upload gets its own guesses and name
    upload_key = getattr(upload, "file_id", None) or upload.name
    left, right = st.columns(2)
    text_column = left.selectbox(
        "Text column", columns, index=columns.index(text_guess), key=f"text_column:{upload_key}"
    )
    label_column = right.selectbox(
        "Label column",
        columns,
        index=columns.index(label_guess),
        key=f"label_column:{upload_key}",
    )
    name = st.text_input("Save as", value=sanitize_name(upload.name), key=f"save_name:{upload_key}")

    problems = []
    if text_column == label_column:
        problems.append("text and label must be different columns")
    labels = table[label_column].dropna().unique()
    if len(labels) < 2:
        problems.append(
            f"the label column has {len(labels)} distinct value(s); a classifier needs two or more"
        )
    elif len(labels) > MAX_LABELS:
        problems.append(
            f"the label column has {len(labels)} distinct values; is it really the label?"
        )
    else:
        st.caption("labels: " + ", ".join(str(v) for v in sorted(labels, key=str)[:20]))
    for problem in problems:
        st.error(problem)
    if not problems:
        for warning in column_warnings(table, text_column, label_column):
            st.warning(warning)
    target = target_path(folder, name, suffix)
    st.caption(f"will be saved as {target}")
    if st.button("Save dataset", disabled=bool(problems), key="save_dataset"):
        folder.mkdir(parents=True, exist_ok=True)
        target = target_path(folder, name, suffix)
        target.write_bytes(data)
        write_columns(target, text_column, label_column)
        st.success(f"saved {target.name}; it is listed below")


def _use(plugin_id: str, path: str, text_column: str, label_column: str) -> None:
    """Preset the Train page: this dataset plugin, this file, these columns."""
    _shared.choose("dataset", plugin_id)
    forms.set_values(
        "dataset",
        plugin_id,
        {"path": path, "text_column": text_column, "label_column": label_column},
    )
    st.session_state["peftlab.data_message"] = (
        f"The Train page now uses dataset '{plugin_id}' with {Path(path).name}."
    )


main()
