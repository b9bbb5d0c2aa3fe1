"""Run folders: layout, status and atomic writes.

runs/<timestamp>-<name>/
  recipe.yaml     resolved recipe (bundle paths, hashes, params)
  status.json     pending | running | completed | failed (+ pid, error, traceback)
  progress.json   step, total steps, epoch, ETA (rewritten as training goes)
  metrics.jsonl   one line per logged step (train loss, eval loss, ...)
  results.json    final metrics, written once, atomically, at the end
  adapter/        what the technique saves (peft's save_pretrained for peft techniques)
  checkpoints/    the Trainer's checkpoints, for --resume
  log.txt         the training process's output
A run whose status says running but whose process is gone reads as interrupted.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.errors import RunError
from kernel.procs import ProcessIdentity

# the storage helpers live in kernel.storage; importable from here too, beside the run folders
from kernel.storage import STORAGE_EXIT_BASE as STORAGE_EXIT_BASE
from kernel.storage import atomic_write_json as atomic_write_json
from kernel.storage import atomic_write_text as atomic_write_text
from kernel.storage import storage_error as storage_error
from kernel.storage import storage_reason as storage_reason
from kernel.yamlio import read_yaml

TERMINAL_STATES = ("completed", "failed")
#: the file a training process holds an exclusive lock on (flock) for as long as it lives
LOCK_FILE = ".train.lock"
#: exit code of a training process that found its run folder locked by another (EX_TEMPFAIL)
LOCKED_EXIT_CODE = 75


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", name).strip("-")[:60] or "run"


class PluginRecord(BaseModel):
    """One bundle as a run recorded it: what a process needs to load that exact version."""

    model_config = ConfigDict(extra="allow")

    id: str = "?"
    params: dict[str, Any] = Field(default_factory=dict)
    path: str = ""
    content_hash: str | None = None
    version: str | None = None
    origin: str = "path"
    #: the run folder's copy of the bundle (relative to the run folder), when it has one
    snapshot: str | None = None


class RunRecord(BaseModel):
    """A run's recipe.yaml, typed: its name and the bundles (with params) it trains with."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    description: str = ""
    dataset: PluginRecord = Field(default_factory=PluginRecord)
    model: PluginRecord = Field(default_factory=PluginRecord)
    technique: PluginRecord = Field(default_factory=PluginRecord)
    trainer: PluginRecord = Field(default_factory=PluginRecord)

    def plugin(self, kind: str) -> PluginRecord:
        return getattr(self, kind)


def _process_alive(status: dict[str, Any]) -> bool:
    identity = ProcessIdentity.from_status(status)
    return identity is not None and identity.alive()


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path, name: str) -> RunFolder:
        """A new, uniquely named folder; mkdir is atomic, so two runs never share one. The path
        is absolute: the training process runs inside the folder."""
        runs_dir = Path(runs_dir).absolute()
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, runs_dir, "create the runs folder") from None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(name)}"
        for attempt in range(1000):
            candidate = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise storage_error(exc, runs_dir, "create a run folder") from None
            return cls(candidate)
        raise RunError("could not create a unique run folder", path=runs_dir)

    @classmethod
    def find(cls, runs_dir: Path, ref: str) -> RunFolder:
        """A run by folder path (as typed: relative to the current directory), exact id, or
        unique id prefix/suffix."""
        direct = Path(ref).expanduser()
        if _is_run_path(direct):
            return cls(direct.absolute())
        candidates = [p for p in list_run_paths(runs_dir) if p.name == ref]
        if not candidates:
            candidates = [
                p
                for p in list_run_paths(runs_dir)
                if p.name.startswith(ref) or p.name.endswith(ref)
            ]
        if len(candidates) == 1:
            return cls(candidates[0])
        if not candidates:
            raise RunError(f"no run '{ref}'", path=runs_dir)
        names = ", ".join(p.name for p in candidates[:5])
        raise RunError(f"'{ref}' matches several runs: {names}", path=runs_dir)

    # files -----------------------------------------------------------------
    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.yaml"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    def write_recipe(self, record: dict[str, Any]) -> None:
        atomic_write_text(self.recipe_file, yaml.safe_dump(record, sort_keys=False))

    def recipe(self) -> dict[str, Any]:
        """recipe.yaml as a mapping; a RunError naming the file when it is missing or damaged."""
        try:
            data = read_yaml(self.recipe_file, error=RunError) or {}
        except FileNotFoundError:
            raise RunError("run has no recipe.yaml", path=self.path) from None
        except OSError as exc:
            raise RunError(f"cannot read: {exc.strerror}", path=self.recipe_file) from None
        if not isinstance(data, dict):
            raise RunError(
                f"not a mapping but {type(data).__name__}", path=self.recipe_file
            ) from None
        return data

    def record(self) -> RunRecord:
        """recipe.yaml as a typed record (a RunError naming the file when it is damaged)."""
        data = self.recipe()
        try:
            return RunRecord.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RunError(f"{where}: {first['msg']}", path=self.recipe_file) from None

    # the training lock -------------------------------------------------------
    def acquire_lock(self) -> IO[bytes] | None:
        """Take the run's exclusive lock (held until the returned file is closed or the
        process ends, however it ends); None when another process holds it, OSError when
        the folder cannot be written."""
        handle = open(self.path / LOCK_FILE, "ab")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        return handle

    def lock_held(self) -> bool:
        """Whether some process holds the training lock now."""
        try:
            handle = open(self.path / LOCK_FILE, "ab")  # noqa: SIM115 - closed below
        except OSError:
            return False  # a folder we cannot write to: nobody trains in it through us
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False

    # status ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """status.json (pending when absent or damaged; running only while its process lives)."""
        data = _read_json_object(self.path / "status.json")
        if not isinstance(data, dict) or not isinstance(data.get("state"), str):
            data = {"state": "pending"}
        if data.get("state") == "running" and not _process_alive(data):
            data["state"] = "interrupted"
        return data

    def resumable(self) -> bool:
        """Whether resuming makes sense: interrupted, or failed in a way that can pass (a stop,
        memory, a full disk); a deterministic failure would only fail the same way again."""
        status = self.status()
        state = status.get("state")
        return state == "interrupted" or (state == "failed" and status.get("resumable") is True)

    def set_status(self, state: str, **fields: Any) -> None:
        data = {k: v for k, v in self.status().items() if k != "state"}
        data.update(fields)
        data["state"] = state
        data["updated"] = time.time()
        atomic_write_json(self.path / "status.json", data)

    def progress(self) -> dict[str, Any]:
        data = _read_json_object(self.path / "progress.json")
        return data if isinstance(data, dict) else {}

    def set_progress(self, **fields: Any) -> None:
        atomic_write_json(self.path / "progress.json", fields)

    # metrics and results -----------------------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": time.time(), **record}, default=float) + "\n"
        with open(self.path / "metrics.jsonl", "a+b") as handle:
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a line cut by a kill: do not glue onto it
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
            handle.flush()

    def metrics(self) -> list[dict[str, Any]]:
        rows = []
        try:
            with open(self.path / "metrics.jsonl", encoding="utf-8") as handle:
                for line in handle:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill: skip it, keep the rest
                    if isinstance(row, dict):
                        rows.append(row)
        except (OSError, UnicodeDecodeError):
            pass  # no metrics yet, or a damaged file: no rows rather than no run
        return rows

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_json(self.path / "results.json", results)

    def results(self) -> dict[str, Any] | None:
        """results.json, or None when there is none or it is damaged (see damage())."""
        data = _read_json_object(self.path / "results.json")
        if not isinstance(data, dict) or _results_problem(data):
            return None
        return data

    def damage(self) -> str | None:
        """Why this folder cannot be read as a run (None when it can): listings show the
        reason instead of failing on it."""
        try:
            self.recipe()
        except RunError as exc:
            return exc.render()
        for name in ("status.json", "results.json"):
            data = _read_json_object(self.path / name)
            if isinstance(data, str):
                return f"{self.path / name}: {data}"
        status = _read_json_object(self.path / "status.json")
        problem = _status_problem(status) if isinstance(status, dict) else None
        if problem:
            return f"{self.path / 'status.json'}: {problem}"
        results = _read_json_object(self.path / "results.json")
        problem = _results_problem(results) if isinstance(results, dict) else None
        return f"{self.path / 'results.json'}: {problem}" if problem else None

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a
        checkpoint without it (or with a damaged one) was cut short or spoilt: the one
        before it is used."""
        checkpoints = [
            p for p in self.checkpoints_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
        ]
        for checkpoint in sorted(checkpoints, key=lambda p: -int(p.name.split("-")[-1])):
            state = _read_json_object(checkpoint / "trainer_state.json")
            if isinstance(state, dict):  # a damaged one: fall back to the one before it
                return checkpoint
        return None


#: results.json keys that hold numbers (a string there would break every table)
NUMERIC_RESULTS = frozenset(
    {
        "accuracy", "f1_macro", "baseline_accuracy", "baseline_f1_macro", "eval_loss",
        "train_loss", "trainable_params", "total_params", "trainable_percent",
        "train_runtime_s", "train_samples_per_s", "train_tokens_per_s",
        "inference_samples_per_s", "peak_memory_mb", "model_footprint_mb", "adapter_size_mb",
        "global_step", "epochs", "learning_rate", "num_train_samples", "num_eval_samples",
        "rouge1", "rouge2", "rougeL", "perplexity", "baseline_rouge1", "baseline_rouge2",
        "baseline_rougeL", "baseline_perplexity",
    }
)  # fmt: skip


def _read_json_object(path: Path) -> dict[str, Any] | str | None:
    """A JSON object from `path`; None when the file is absent, else the reason it is damaged."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg}, line {exc.lineno})"
    except OSError as exc:
        return f"cannot read ({exc.strerror})"
    except RecursionError:
        return "nested too deeply"
    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    return data


def _status_problem(status: dict[str, Any]) -> str | None:
    if not isinstance(status.get("state"), str):
        return "no state"
    pid = status.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        return f"'pid' should be an integer, not {type(pid).__name__} {pid!r:.40}"
    for key in ("started", "finished", "pid_started"):
        value = status.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"'{key}' should be a time in seconds, not {type(value).__name__} {value!r:.40}"
    return None


def _results_problem(results: dict[str, Any]) -> str | None:
    for key in sorted(NUMERIC_RESULTS & set(results)):
        value = results[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"'{key}' should be a number, not {type(value).__name__} {value!r:.40}"
    return None


def _is_run_path(path: Path) -> bool:
    try:
        return (path / "recipe.yaml").is_file()
    except OSError:  # a folder this user may not enter: not a run of theirs
        return False


def list_run_paths(runs_dir: Path) -> list[Path]:
    try:
        return sorted(p for p in runs_dir.iterdir() if _is_run_path(p))
    except OSError:  # no runs folder yet, or one that cannot be read
        return []


def list_runs(runs_dir: Path) -> list[RunFolder]:
    return [RunFolder(p) for p in list_run_paths(runs_dir)]
