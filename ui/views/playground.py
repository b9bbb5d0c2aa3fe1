"""Playground: type a text and see the base model and a fine-tuned run answer side by side.

Classifier runs show each class's probability; runs that generate text (causal-lm,
seq2seq) show what each model writes. Models come from engine/inference.py, the code
behind `peftlab predict`, and stay loaded per run (st.cache_resource).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from engine import rebuild
from engine.inference import GENERATION_TASKS
from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui import charts
from ui.views import _shared

EXAMPLE = "A gripping, beautifully acted film."


@st.cache_resource(show_spinner="Loading the base and the fine-tuned model ...", max_entries=4)
def classifiers(run_path: str, finished: float) -> tuple[Any, Any]:
    """(base, fine-tuned) classifiers of one run; `finished` renews them after a resume."""
    from engine.inference import Classifier, load_classifier
    from engine.rebuild import load_base, quiet_loading

    run = RunFolder(Path(run_path))
    with quiet_loading():
        loaded, info = load_base(run, seeded=True)
    labels = list(info["label_names"])
    base = Classifier(loaded.model, loaded.tokenizer, labels, int(info.get("max_length") or 128))
    return base, load_classifier(run)


@st.cache_resource(show_spinner="Loading the base and the fine-tuned model ...", max_entries=2)
def generators(run_path: str, finished: float) -> tuple[Any, Any]:
    """(base, fine-tuned) text generators of one run."""
    from engine.inference import generator_for, load_generator
    from engine.rebuild import load_base, quiet_loading

    run = RunFolder(Path(run_path))
    tuned = load_generator(run)
    with quiet_loading():
        loaded, info = load_base(run, seeded=True)
    return generator_for(loaded.model, tuned.tokenizer, info), tuned


def main() -> None:
    st.title("Playground")
    all_rows = _shared.run_rows(_shared.runs_dir())
    for damaged in (r for r in all_rows if r["state"] == "damaged"):
        st.caption(f"run {damaged['run']} is damaged and cannot be loaded: {damaged['problem']}")
    rows = [r for r in all_rows if r["state"] == "completed"]
    if not rows:
        st.info(
            "No completed runs yet. Train one on the Train page; it shows up here when it finishes."
        )
        return
    labels = {
        r["path"]: f"{r['run']} · {r['technique']} on {r['model']} · accuracy {_fmt(r['accuracy'])}"
        for r in rows
    }
    run_path = st.selectbox("Run", list(labels), format_func=labels.get, key="playground_run")
    run = RunFolder(Path(run_path))
    try:
        task = rebuild.run_task(run)
    except PeftlabError as exc:
        st.warning(f"this run has no model to load: {exc.message}")
        return
    text = st.text_area("Text", value=EXAMPLE, key="playground_text", height=100)
    if st.button("Predict", type="primary", key="predict"):
        st.session_state["peftlab.playground"] = (run_path, text)
    if st.session_state.get("peftlab.playground") != (run_path, text) or not text.strip():
        st.caption("Predict runs the text through the base model and the fine-tuned one.")
        return

    started = time.perf_counter()
    finished = float(run.status().get("finished") or 0)
    try:
        if task in GENERATION_TASKS:
            base, tuned = generators(run_path, finished)
            answers = (base.generate([text])[0], tuned.generate([text])[0])
        else:
            base, tuned = classifiers(run_path, finished)
            answers = (base.predict([text])[0], tuned.predict([text])[0])
    except (PeftlabError, OSError, ValueError, RuntimeError, ImportError, AttributeError) as exc:
        st.error(f"cannot run the models of {run.id}: {exc}")
        return
    left, right = st.columns(2)
    for column, title, answer, key in (
        (left, "Base model (before training)", answers[0], "base"),
        (right, "Fine-tuned", answers[1], "tuned"),
    ):
        with column:
            st.subheader(title)
            if isinstance(answer, str):
                st.text(answer or "(nothing)")
            else:
                _prediction(answer, key)
    st.caption(
        f"{time.perf_counter() - started:.2f} s (the first call for a run loads both models)"
    )


def _prediction(prediction: Any, key: str) -> None:
    st.metric(
        "prediction",
        str(prediction.label),
        f"{prediction.confidence:.1%} sure",
        delta_color="off",
        delta_arrow="off",
    )
    st.plotly_chart(
        charts.probabilities(prediction.probabilities),
        key=f"probabilities-{key}",
        width="stretch",
    )


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


main()
