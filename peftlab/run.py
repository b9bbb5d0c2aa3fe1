"""`Run`: one training run as a Python object — its state, results, metrics and model."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.process import stop_run
from kernel.errors import RunError
from kernel.runs import RunFolder, RunRecord

POLL_S = 0.5


class Run:
    """A run folder, and the training process when this session started it.

    Training runs in its own process, so a notebook kernel neither holds the
    training's threads nor dies with it; `wait()` follows it with a progress bar.
    """

    def __init__(
        self, folder: RunFolder | Path | str, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.folder = folder if isinstance(folder, RunFolder) else RunFolder(Path(folder))
        self._process = process
        self._predictor: Any = None

    def __repr__(self) -> str:
        return f"Run({self.id!r}, state={self.state!r})"

    @property
    def id(self) -> str:
        """The run folder's name: <timestamp>-<recipe name>."""
        return self.folder.id

    @property
    def path(self) -> Path:
        """The run folder (recipe.yaml, metrics.jsonl, results.json, adapter/, log.txt)."""
        return self.folder.path

    @property
    def state(self) -> str:
        """pending | running | completed | failed | interrupted."""
        return str(self.folder.status().get("state", "pending"))

    @property
    def error(self) -> str | None:
        """Why a failed run failed, in one line."""
        return self.folder.status().get("error")

    @property
    def record(self) -> RunRecord:
        """The run's recipe, typed (dataset, model, technique and trainer with their params)."""
        return self.folder.record()

    @property
    def results(self) -> dict[str, Any]:
        """results.json of a finished run (accuracy, loss, trainable %, time, memory, ...)."""
        return self.folder.results() or {}

    @property
    def metrics(self) -> Any:
        """metrics.jsonl as a pandas DataFrame, one row per logged step."""
        import pandas as pd

        return pd.DataFrame(self.folder.metrics())

    def wait(self, *, progress: bool = True, timeout: float | None = None) -> Run:
        """Block until the run ends; a progress bar that works in a terminal and in Jupyter."""
        from tqdm.auto import tqdm

        deadline = None if timeout is None else time.monotonic() + timeout
        bar = tqdm(total=None, desc=self.id, unit="step", disable=not progress, leave=True)
        try:
            while self._running():
                _update(bar, self.folder.progress())
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {self.id} still {self.state} after {timeout} s")
                self._sleep()
            _update(bar, self.folder.progress())
        except KeyboardInterrupt:
            self.cancel()
            raise
        finally:
            bar.close()
        return self

    def cancel(self) -> str:
        """Stop the training process (SIGINT, then harder); the run can be resumed later."""
        return stop_run(self.folder, self._process).message

    def load(self) -> Any:
        """The trained model, its tokenizer and the run's info (`engine.rebuild.TrainedModel`)."""
        from engine.rebuild import load_trained

        self._require_completed()
        return load_trained(self.folder)

    def pipeline(self) -> Any:
        """A transformers pipeline over the trained model (text-classification or generation)."""
        from transformers import pipeline

        trained = self.load()
        task = {"causal-lm": "text-generation", "seq2seq": "text2text-generation"}.get(
            trained.task, "text-classification"
        )
        return pipeline(task, model=trained.model, tokenizer=trained.tokenizer)

    def predict(self, texts: str | Sequence[str]) -> list[Any]:
        """Classify texts (a list of `Prediction`) or, for a generation run, continue them
        (a list of strings). The model is loaded once per Run object."""
        from engine.inference import is_generation_run, load_classifier, load_generator

        batch = [texts] if isinstance(texts, str) else list(texts)
        if self._predictor is None:
            self._require_completed()
            generation = is_generation_run(self.folder)
            self._predictor = (load_generator if generation else load_classifier)(self.folder)
        if hasattr(self._predictor, "generate"):
            return list(self._predictor.generate(batch))
        return list(self._predictor.predict(batch))

    def export(self, out_dir: str | Path | None = None, *, merge: bool = False) -> Path:
        """Write the adapter (or, with merge, the base with the adapter folded in) to out_dir."""
        from engine.adapters import export_adapter, export_merged

        self._require_completed()
        default = self.path / ("merged" if merge else "export")
        out = Path(out_dir).expanduser().resolve() if out_dir else default
        if merge:
            return export_merged(self.folder, out).out_dir
        return export_adapter(self.folder, out)

    # ----------------------------------------------------------------------------------
    def _running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self.state in ("pending", "running")

    def _sleep(self) -> None:
        if self._process is None:
            time.sleep(POLL_S)
            return
        try:
            self._process.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            pass

    def _require_completed(self) -> None:
        if self.state != "completed":
            detail = f": {self.error}" if self.error else ""
            raise RunError(f"run is {self.state}, not completed{detail}", path=self.path)


def _update(bar: Any, progress: dict[str, Any]) -> None:
    total, step = progress.get("total_steps"), progress.get("step")
    if total and bar.total != total:
        bar.total = int(total)
    if step is not None:
        bar.n = int(step)
    phase = progress.get("phase")
    if phase:
        bar.set_postfix_str(str(phase), refresh=False)
    bar.refresh()
