"""Playground: type a text and see the base model and a fine-tuned run predict side by side."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui import charts
from ui.pages import _shared

EXAMPLE = "A gripping, beautifully acted film."


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No load reports in the app's log: a base model's new head is expected."""
    import transformers

    logging = transformers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def base_classifier(run: RunFolder) -> Any:
    """The run's base model before training: built like the run built it, with the run's
    seed, so its new classification head starts where the run's started."""
    import transformers

    from kernel.runner import load_plugin
    from sdk.hf import load_base_model
    from ui.inference import Classifier, run_info

    info = run_info(run)
    record = run.recipe()
    transformers.set_seed(int(record.get("trainer", {}).get("params", {}).get("seed", 42)))
    labels = list(info["label_names"])
    with _quiet_loading():
        loaded, _ = load_base_model(
            load_plugin("model", record["model"]),
            load_plugin("technique", record["technique"]),
            info["task"],
            labels,
        )
    return Classifier(loaded.model, loaded.tokenizer, labels, int(info.get("max_length") or 128))


@st.cache_resource(show_spinner="Loading the base and the fine-tuned model ...", max_entries=4)
def classifiers(run_path: str, finished: float) -> tuple[Any, Any]:
    """(base, fine-tuned) of one run, loaded once and kept; `finished` renews them after a resume."""
    from ui.inference import load_classifier

    run = RunFolder(Path(run_path))
    return base_classifier(run), load_classifier(run)


def main() -> None:
    st.title("Playground")
    rows = [r for r in _shared.run_rows(_shared.runs_dir()) if r["state"] == "completed"]
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
    text = st.text_area("Text", value=EXAMPLE, key="playground_text", height=100)
    clicked = st.button("Predict", type="primary", key="predict")
    if clicked:
        st.session_state["peftlab.playground"] = (run_path, text)
    if st.session_state.get("peftlab.playground") != (run_path, text) or not text.strip():
        st.caption("Predict labels the text with the base model and the fine-tuned one.")
        return

    run = RunFolder(Path(run_path))
    started = time.perf_counter()
    try:
        base, tuned = classifiers(run_path, float(run.status().get("finished") or 0))
        base_prediction, tuned_prediction = base.predict([text])[0], tuned.predict([text])[0]
    except (PeftlabError, OSError, ValueError, RuntimeError, ImportError) as exc:
        st.error(f"cannot predict with run {run.id}: {exc}")
        return
    left, right = st.columns(2)
    _show(left, "Base model (before training)", base_prediction, "base")
    _show(right, "Fine-tuned", tuned_prediction, "tuned")
    st.caption(
        f"{time.perf_counter() - started:.2f} s (the first prediction of a run loads both models)"
    )


def _show(column: Any, title: str, prediction: Any, key: str) -> None:
    with column:
        st.subheader(title)
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
