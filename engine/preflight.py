"""Checks before a run folder exists: what can be found wrong in milliseconds is not left
for a training process to find after loading torch.

Paths that do not exist, data files without the columns the recipe names (only the
header is read), a hub id while the hub is offline and not in the local cache, counts
no run could reach, and target modules that match none of the model's known layers.
The CLI's `train` and the UI's Train page call `preflight` after resolving a recipe
and before `prepare_run`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from kernel.errors import DatasetError, ParamError, PeftlabError
from kernel.recipe import RECIPE_KINDS, ResolvedRecipe

#: an int param above this is a typo (1e20 steps), not a plan; manifests may set their own max
MAX_COUNT = 2**31 - 1
HEADER_BYTES = 64 * 1024
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl")


def preflight(resolved: ResolvedRecipe) -> None:
    """Raise the first problem found (a PeftlabError naming the param), or return."""
    for check in (_paths, _counts, _columns, _model_source, _target_modules):
        check(resolved)


def _where(resolved: ResolvedRecipe, kind: str) -> str:
    return f"{kind} '{resolved.plugins[kind].bundle.manifest.id}'"


def _paths(resolved: ResolvedRecipe) -> None:
    for kind in RECIPE_KINDS:
        plugin = resolved.plugins[kind]
        for name, spec in plugin.bundle.manifest.params.items():
            value = plugin.params.get(name)
            if spec.type == "path" and value and not Path(value).exists():
                raise ParamError(
                    f"no such file or folder: {value}", path=_where(resolved, kind), field=name
                )


def _counts(resolved: ResolvedRecipe) -> None:
    for kind in RECIPE_KINDS:
        plugin = resolved.plugins[kind]
        for name, spec in plugin.bundle.manifest.params.items():
            value = plugin.params.get(name)
            if spec.type == "int" and spec.max is None and isinstance(value, int):
                if value > MAX_COUNT:
                    raise ParamError(
                        f"{value:g} is far beyond anything a run can reach (at most {MAX_COUNT})",
                        path=_where(resolved, kind),
                        field=name,
                    )


# dataset columns, from the header only -------------------------------------------------


def wanted_columns(resolved: ResolvedRecipe) -> list[str]:
    """Columns the dataset bundle will read: its *_column / *_field params, or its facts."""
    plugin = resolved.plugins["dataset"]
    named = [
        value
        for name, value in plugin.params.items()
        if name.endswith(("_column", "_field")) and isinstance(value, str) and value
    ]
    facts = plugin.bundle.manifest.dataset
    if named or facts is None:
        return named
    return [*facts.text_fields, facts.label_field] if facts.label_field else list(facts.text_fields)


def data_files(resolved: ResolvedRecipe) -> list[Path]:
    """The dataset's local files whose header can be read cheaply (a folder: its train file)."""
    plugin = resolved.plugins["dataset"]
    files = []
    for name, spec in plugin.bundle.manifest.params.items():
        value = plugin.params.get(name)
        if spec.type != "path" or not value:
            continue
        path = Path(value)
        if path.is_dir():
            path = next(
                (path / f"train{s}" for s in DATA_SUFFIXES if (path / f"train{s}").is_file()), path
            )
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            files.append(path)
    return files


def header_columns(path: Path) -> list[str] | None:
    """Column names from a CSV/TSV header or the first JSONL record; None when unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        return None
    if path.suffix.lower() == ".jsonl":
        try:
            record = json.loads(lines[0])
        except json.JSONDecodeError:
            return None  # the loader names the bad line
        return [str(k) for k in record] if isinstance(record, dict) else None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:  # a file with another delimiter: the loader's own detection decides, so do we
        delimiter = csv.Sniffer().sniff(lines[0], delimiters=",;\t|").delimiter
    except csv.Error:
        pass
    return [c.strip() for c in next(csv.reader([lines[0]], delimiter=delimiter))]


def _columns(resolved: ResolvedRecipe) -> None:
    wanted = wanted_columns(resolved)
    for path in data_files(resolved):
        columns = header_columns(path)
        if columns is None:
            continue
        missing = [c for c in wanted if c not in columns]
        if missing:
            shown = ", ".join(columns[:20]) or "(none)"
            raise DatasetError(
                f"no column {', '.join(map(repr, missing))}; it has: {shown}", path=path
            )


# the model -----------------------------------------------------------------------------


def hub_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds the repo's config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True  # cannot tell: let loading decide
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id the hub library refuses to even look up
        return False
    return isinstance(found, str)


def _model_source(resolved: ResolvedRecipe) -> None:
    plugin = resolved.plugins["model"]
    value = plugin.params.get("name_or_path")
    if not isinstance(value, str) or not value:
        return
    where = _where(resolved, "model")
    if Path(value).is_absolute():
        if not (Path(value) / "config.json").is_file():
            problem = "has no config.json" if Path(value).is_dir() else "does not exist"
            raise ParamError(f"model folder {value} {problem}", path=where, field="name_or_path")
        return
    if hub_offline() and not in_hub_cache(value):
        raise ParamError(
            f"'{value}' is a hub id, the hub is offline (HF_HUB_OFFLINE) and it is not in the "
            "local cache; give a local model folder",
            path=where,
            field="name_or_path",
        )


def _target_modules(resolved: ResolvedRecipe) -> None:
    technique = resolved.plugins["technique"]
    targets = technique.params.get("target_modules")
    facts = resolved.plugins["model"].bundle.manifest.model
    if not isinstance(targets, list) or facts is None:
        return
    known = [
        *facts.attention_modules,
        *facts.feedforward_modules,
        *facts.default_target_modules,
        *facts.classifier_modules,
    ]
    if not known:
        return  # a model that declares no layer names: loading decides
    unmatched = [t for t in targets if not _matches_any(t, known)]
    if unmatched:
        raise ParamError(
            f"{', '.join(unmatched)} match(es) no layer of {facts.architecture}; "
            f"its layers include: {', '.join(dict.fromkeys(known))}",
            path=_where(resolved, "technique"),
            field="target_modules",
        )


def _matches_any(target: str, known: list[str]) -> bool:
    if target == "all-linear" or any(ch in target for ch in "*?[]()|^$\\"):
        return True  # peft's keyword, or a regular expression: not checked here
    return any(k == target or k.endswith("." + target) or target.endswith("." + k) for k in known)


def check(resolved: ResolvedRecipe) -> PeftlabError | None:
    """The first pre-flight problem, or None (for callers that show rather than raise)."""
    try:
        preflight(resolved)
    except PeftlabError as exc:
        return exc
    return None
