"""Playground: type a text and see the base model and a fine-tuned run predict side by side."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import streamlit as st

from ui.pages import _shared

INFERENCE_MODULES = ("ui.inference", "sdk.inference")


def inference_module() -> ModuleType | None:
    """The engine's reusable inference code, if this build has it."""
    for name in INFERENCE_MODULES:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return None


@st.cache_resource(show_spinner="Loading the models ...", max_entries=4)
def _predictor(run_path: str) -> Any:
    """Base and fine-tuned model of one run, loaded once per run and kept."""
    module = inference_module()
    return module.load_run(Path(run_path))


def main() -> None:
    st.title("Playground")
    rows = [r for r in _shared.run_rows(_shared.runs_dir()) if r["state"] == "completed"]
    if not rows:
        st.info("No completed runs yet. Train one on the Train page; it shows up here when it finishes.")
        return
    module = inference_module()
    if module is None:
        st.warning("This build has no inference engine (ui/inference.py), so predictions are off.")
        return
    labels = {r["path"]: f"{r['run']} ({r['technique']} on {r['model']}, accuracy {_fmt(r['accuracy'])})" for r in rows}
    run_path = st.selectbox("Run", list(labels), format_func=labels.get, key="playground_run")
    text = st.text_area("Text", value="A gripping, beautifully acted film.", key="playground_text")
    if not st.button("Predict", type="primary", key="predict") and "playground_last" not in st.session_state:
        return
    try:
        predictor = _predictor(run_path)
        base, tuned = module.predict(predictor, [text])
    except Exception as exc:  # the engine's own errors name the model or folder at fault
        st.error(f"cannot predict with this run: {exc}")
        return
    left, right = st.columns(2)
    _column(left, "Base model (not fine-tuned)", base[0])
    _column(right, "Fine-tuned", tuned[0])


def _column(column: Any, title: str, prediction: dict[str, Any]) -> None:
    with column:
        st.subheader(title)
        st.metric("prediction", str(prediction["label"]), f"{prediction['score']:.1%}", delta_color="off")
        probabilities = pd.DataFrame(
            {"label": list(prediction["probabilities"]), "probability": list(prediction["probabilities"].values())}
        )
        st.bar_chart(probabilities, x="label", y="probability", horizontal=True)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


main()
