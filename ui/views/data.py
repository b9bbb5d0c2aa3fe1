"""Datasets: upload a CSV or JSONL file, preview it, map its columns, and train on it.

Saved files go to <data dir>/datasets under a sanitised name; the uploaded name
is never used as a path. Training uses whichever dataset plugin reads a local
file (a `path` param plus `text_column` and `label_column`), with those preset.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from kernel.manifest import Manifest
from ui import forms
from ui.views import _shared

SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "json": ".jsonl"}
FILE_PARAMS = ("path", "text_column", "label_column")
MAX_LABELS = 100


def sanitize_name(name: str) -> str:
    """A file stem made of letters, digits, - and _ only (no folders, no dots, no ..)."""
    stem = Path(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:60]
    return slug or "dataset"


def target_path(folder: Path, name: str, suffix: str) -> Path:
    """A new file in `folder` for `name`; never outside it, never over an existing file."""
    stem = sanitize_name(name)
    folder = folder.resolve()
    candidate = folder / f"{stem}{suffix}"
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{number}{suffix}"
        number += 1
    if candidate.parent != folder:  # cannot happen after sanitising; refuse anyway
        raise ValueError(f"refusing to write outside {folder}")
    return candidate


def read_table(data: bytes, suffix: str) -> pd.DataFrame:
    if suffix == ".csv":
        return pd.read_csv(io.BytesIO(data))
    return pd.read_json(io.BytesIO(data), lines=True)


def columns_file(path: Path) -> Path:
    return path.with_name(path.name + ".columns.json")


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
    text_guess = "text" if "text" in columns else columns[0]
    label_guess = "label" if "label" in columns else columns[-1]
    left, right = st.columns(2)
    text_column = left.selectbox(
        "Text column", columns, index=columns.index(text_guess), key="text_column"
    )
    label_column = right.selectbox(
        "Label column", columns, index=columns.index(label_guess), key="label_column"
    )
    name = st.text_input("Save as", value=sanitize_name(upload.name), key="save_name")

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
