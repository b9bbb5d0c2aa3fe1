"""`peftlab plugin validate`: every problem in a bundle, each with file and field."""

from __future__ import annotations

from pathlib import Path

from kernel.errors import ManifestError, PeftlabError, PluginLoadError
from kernel.loader import content_hash, entry_file, import_entry
from kernel.manifest import MANIFEST_FILE, Manifest, manifest_errors, read_manifest_data
from kernel.params import defaults_problems
from sdk.base import BASE_CLASSES

# methods an entry must override, per kind
CONTRACT_METHODS = {
    "technique": ("apply",),
    "model": ("load",),
    "dataset": ("load",),
    "trainer": ("run",),
}


def validate_bundle(folder: Path, *, import_entry_module: bool = True) -> list[PeftlabError]:
    """All problems found in the bundle folder (an empty list means valid)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        return [ManifestError("not a folder", path=folder)]
    try:
        data = read_manifest_data(manifest_path)
    except ManifestError as exc:
        return [exc]
    problems: list[PeftlabError] = list(manifest_errors(data, manifest_path))
    if problems:
        return problems
    manifest = Manifest.model_validate(data)
    for problem in defaults_problems(manifest):
        problem.path = str(manifest_path)
        problem.args = (problem.render(),)
        problems.append(problem)
    if entry_file(manifest, folder) is None:
        problems.append(
            PluginLoadError(
                f"entry module '{manifest.entry_module}' not found in the bundle folder",
                path=manifest_path,
                field="entry",
            )
        )
        return problems
    if import_entry_module:
        problems += contract_problems(manifest, folder)
    return problems


def contract_problems(manifest: Manifest, folder: Path) -> list[PeftlabError]:
    """Import the entry and check it is the right kind of class with the methods filled in."""
    manifest_path = folder / MANIFEST_FILE
    try:
        entry = import_entry(manifest, folder, "validate" + content_hash(folder)[:8])
    except PeftlabError as exc:
        return [exc]
    base = BASE_CLASSES[manifest.kind]
    if not (isinstance(entry, type) and issubclass(entry, base)):
        return [
            PluginLoadError(
                f"'{manifest.entry}' must be a subclass of sdk.{base.__name__}, "
                f"got {entry!r}",
                path=manifest_path,
                field="entry",
            )
        ]
    problems: list[PeftlabError] = []
    for method in CONTRACT_METHODS[manifest.kind]:
        if getattr(entry, method) is getattr(base, method):
            problems.append(
                PluginLoadError(
                    f"{entry.__name__} does not implement {method}()",
                    path=manifest_path,
                    field="entry",
                )
            )
    return problems
