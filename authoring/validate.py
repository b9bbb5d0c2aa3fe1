"""`peftlab plugin validate`: every problem in a bundle at once, each with file and field.

The checks run in layers, and a problem in one layer does not hide the next:
the manifest against the schema (all errors), each param's default against its
own bounds, `options_from` against the model facts, declared architectures
against the installed model bundles (a warning), then the entry is imported and
checked against its kind's contract (base class, methods, signatures).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kernel.bundlefiles import walk_bundle
from kernel.errors import ManifestError, PeftlabError, PluginLoadError
from kernel.loader import content_hash, entry_file, import_entry, module_prefix, retire_modules
from kernel.manifest import (
    KINDS,
    MANIFEST_FILE,
    Manifest,
    ModelFacts,
    ParamSpec,
    manifest_errors,
    read_manifest_data,
)
from kernel.params import defaults_problems
from kernel.registry import Snapshot
from kernel.trialimport import trial_import
from sdk.base import BASE_CLASSES

ERROR = "error"
WARNING = "warning"

# methods an entry must override, per kind
CONTRACT_METHODS: dict[str, tuple[str, ...]] = {
    "technique": ("apply",),
    "model": ("load",),
    "dataset": ("load",),
    "trainer": ("run",),
}


def severity(problem: PeftlabError) -> str:
    """`error` (the bundle cannot work) or `warning` (it works, but probably not as meant)."""
    return getattr(problem, "severity", ERROR)


def errors_only(problems: Iterable[PeftlabError]) -> list[PeftlabError]:
    return [p for p in problems if severity(p) == ERROR]


def validate_bundle(
    folder: Path,
    *,
    import_entry_module: bool = True,
    architectures: Iterable[str] | None = None,
) -> list[PeftlabError]:
    """All problems found in the bundle folder (an empty list means valid).

    `architectures` are the model architectures known to exist; None asks a
    kernel discovery of the installed bundles (built-in, user, packages).
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    if not folder.is_dir():
        return [ManifestError("not a folder", path=folder)]
    try:
        data = read_manifest_data(manifest_path)
    except ManifestError as exc:
        return [exc]
    problems: list[PeftlabError] = list(manifest_errors(data, manifest_path))
    if not isinstance(data, dict):
        return problems
    lines = _field_lines(manifest_path)
    bad_fields = {p.field.split(".")[0] for p in problems if p.field}

    problems += _param_problems(data, manifest_path)
    problems += _architecture_problems(data, manifest_path, architectures)
    problems += _package_problems(data, manifest_path)
    problems += [  # links out of the bundle and special files: never copied nor imported
        PluginLoadError(entry.reason, path=folder / entry.relative)
        for entry in walk_bundle(folder)[1]
    ]

    manifest = _entry_manifest(data, bad_fields)
    if manifest is not None:
        if entry_file(manifest, folder) is None:
            problems.append(
                PluginLoadError(
                    f"entry module '{manifest.entry_module}' not found in the bundle folder "
                    f"(looked for {manifest.entry_module.replace('.', '/')}.py)",
                    path=manifest_path,
                    field="entry",
                )
            )
        elif import_entry_module:
            problems += contract_problems(manifest, folder)

    for problem in problems:
        if problem.line is None and problem.field and problem.path == str(manifest_path):
            problem.line = _line_of(problem.field, lines)
        problem.args = (problem.render(),)
    return problems


# --- manifest-level checks that pydantic cannot do --------------------------------


def _param_problems(data: dict[str, Any], manifest_path: Path) -> list[PeftlabError]:
    """Defaults outside their own bounds, and options_from naming no model list field."""
    params = data.get("params")
    if not isinstance(params, dict):
        return []
    specs: dict[str, ParamSpec] = {}
    for name, raw in params.items():
        try:
            specs[str(name)] = ParamSpec.model_validate(raw)
        except (ValidationError, TypeError):
            continue  # already reported by the schema check
    problems: list[PeftlabError] = []
    bundle_id = str(data.get("id", manifest_path.parent.name))
    for problem in defaults_problems(Manifest.model_construct(id=bundle_id, params=specs)):
        problems.append(ManifestError(problem.message, path=manifest_path, field=problem.field))
    list_fields = sorted(
        name for name, info in ModelFacts.model_fields.items() if "list" in str(info.annotation)
    )
    for name, spec in specs.items():
        if spec.options_from is None:
            continue
        field = spec.options_from.split(".", 1)[1]
        if field not in list_fields:
            problems.append(
                ManifestError(
                    f"options_from '{spec.options_from}' names no list in a model's facts; "
                    f"valid: {', '.join('model.' + f for f in list_fields)}",
                    path=manifest_path,
                    field=f"params.{name}.options_from",
                )
            )
    return problems


def _architecture_problems(
    data: dict[str, Any], manifest_path: Path, known: Iterable[str] | None
) -> list[PeftlabError]:
    requires = data.get("requires")
    declared = requires.get("architectures") if isinstance(requires, dict) else None
    if not isinstance(declared, list) or not declared:
        return []
    problems: list[PeftlabError] = [
        _warning(
            ManifestError(
                "requires.architectures is a legacy allow-list (still honoured): state the layer "
                "kinds the bundle adapts in requires.layers (linear, conv1d, embedding, "
                "layernorm) and name the architectures it cannot work with in requires.excludes "
                "({architecture: NAME, reason: ...}), so a new model fits without an edit",
                path=manifest_path,
                field="requires.architectures",
            )
        )
    ]
    known_set = set(installed_architectures() if known is None else known)
    own = data.get("model")
    if isinstance(own, dict) and isinstance(own.get("architecture"), str):
        known_set.add(own["architecture"])
    for arch in declared:
        if isinstance(arch, str) and arch not in known_set:
            problems.append(
                _warning(
                    ManifestError(
                        f"architecture '{arch}' is not provided by any installed model bundle "
                        f"(known: {', '.join(sorted(known_set)) or 'none'})",
                        path=manifest_path,
                        field="requires.architectures",
                    )
                )
            )
    return problems


def _package_problems(data: dict[str, Any], manifest_path: Path) -> list[PeftlabError]:
    from kernel.capabilities import missing_package

    requires = data.get("requires")
    packages = requires.get("packages") if isinstance(requires, dict) else None
    if not isinstance(packages, list):
        return []
    problems: list[PeftlabError] = []
    for i, requirement in enumerate(packages):
        if not isinstance(requirement, str):
            continue
        reason = missing_package(requirement)
        if reason is None:
            continue
        problem = ManifestError(reason, path=manifest_path, field=f"requires.packages.{i}")
        problems.append(problem if reason.startswith("invalid") else _warning(problem))
    return problems


def installed_architectures() -> set[str]:
    """Architectures declared by every model bundle a default kernel discovers."""
    import warnings

    from kernel.core import Kernel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate ids are not this bundle's problem
        return architectures_of(Kernel().discover())


def architectures_of(snapshot: Snapshot) -> set[str]:
    """Architectures declared by the model bundles of a registry snapshot."""
    return {
        b.manifest.model.architecture
        for b in snapshot.of_kind("model")
        if b.manifest.model and not b.manifest.model.derived
    }


def _warning(problem: PeftlabError) -> PeftlabError:
    problem.severity = WARNING  # type: ignore[attr-defined]
    return problem


def _entry_manifest(data: dict[str, Any], bad_fields: set[str]) -> Manifest | None:
    """Enough of the manifest to import the entry, even when other fields are broken."""
    # the schema check already refused a bad kind, entry or id (an entry leaving the bundle too)
    kind, entry, bundle_id = data.get("kind"), data.get("entry"), data.get("id")
    if bad_fields & {"kind", "entry"} or kind not in KINDS or not isinstance(entry, str):
        return None
    if "id" in bad_fields or not isinstance(bundle_id, str):
        bundle_id = "unnamed"
    return Manifest.model_construct(id=bundle_id, kind=kind, entry=entry)


# --- the entry and its contract ----------------------------------------------------


def contract_problems(manifest: Manifest, folder: Path) -> list[PeftlabError]:
    """Import the entry and check it is the right kind of class with the methods filled in."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST_FILE
    # a private module name, so validating never touches a version the registry imported
    salt = f"validate:{folder.resolve()}:{content_hash(folder)}"
    version = hashlib.sha256(salt.encode()).hexdigest()
    # os._exit(), a hang or KeyboardInterrupt at import stay in a child process
    failure = trial_import(folder, entry=(manifest.kind, manifest.id, manifest.entry))
    if failure is not None:
        failure.field = failure.field or "entry"
        failure.args = (failure.render(),)
        return [failure]
    try:
        entry = import_entry(manifest, folder, version)
    except PeftlabError as exc:
        if exc.field is None:
            exc.field = "entry"
        return [exc]
    try:
        return _check_entry(entry, manifest, folder, manifest_path)
    finally:
        retire_modules(f"{module_prefix(manifest.kind, manifest.id)}.v{version[:8]}")


def _check_entry(
    entry: object, manifest: Manifest, folder: Path, manifest_path: Path
) -> list[PeftlabError]:
    base = BASE_CLASSES[manifest.kind]
    module_file = entry_file(manifest, folder) or manifest_path
    if not (isinstance(entry, type) and issubclass(entry, base)):
        got = entry.__name__ if isinstance(entry, type) else type(entry).__name__
        return [
            PluginLoadError(
                f"'{manifest.entry}' must be a subclass of sdk.{base.__name__} "
                f"(a {manifest.kind} bundle); got {got}",
                path=module_file,
                field="entry",
                line=_source_line(entry),
            )
        ]
    problems: list[PeftlabError] = []
    where = {"path": module_file, "field": "entry", "line": _source_line(entry)}
    try:
        inspect.signature(entry).bind()
    except TypeError:
        problems.append(
            PluginLoadError(f"{entry.__name__}() must be constructible without arguments", **where)
        )
    except ValueError:
        pass  # no signature to inspect (a C type): let the runner find out
    for method in CONTRACT_METHODS[manifest.kind]:
        if getattr(entry, method) is getattr(base, method):
            problems.append(
                PluginLoadError(
                    f"{entry.__name__} does not implement "
                    f"{method}{_signature(getattr(base, method))}",
                    **where,
                )
            )
    for method, base_function in _public_methods(base):
        function = getattr(entry, method)
        if function is base_function:
            continue
        if not callable(function):
            problems.append(PluginLoadError(f"{entry.__name__}.{method} is not a method", **where))
            continue
        wanted = len(inspect.signature(base_function).parameters)
        try:
            inspect.signature(function).bind(*([None] * wanted))
        except TypeError:
            problems.append(
                PluginLoadError(
                    f"{entry.__name__}.{method}{_signature(function)} must accept the same "
                    f"arguments as sdk.{base.__name__}.{method}{_signature(base_function)}",
                    path=module_file,
                    field="entry",
                    line=_source_line(function),
                )
            )
        except ValueError:
            continue
    return problems


def _public_methods(base: type) -> list[tuple[str, Callable[..., Any]]]:
    return [
        (name, value)
        for name, value in vars(base).items()
        if not name.startswith("_") and inspect.isfunction(value)
    ]


def _signature(function: Callable[..., Any]) -> str:
    """`(self, model, ctx)`: parameter names only, as an author would write them."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return "(...)"
    return (
        "("
        + ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in parameters)
        + ")"
    )


def _source_line(obj: object) -> int | None:
    try:
        return inspect.getsourcelines(obj)[1]  # type: ignore[arg-type]
    except (OSError, TypeError):
        return None


# --- where a field sits in plugin.yaml ------------------------------------------------


def _field_lines(manifest_path: Path) -> dict[str, int]:
    """Dotted field path -> 1-based line, from the YAML node tree (no values are built)."""
    try:
        root = yaml.compose(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = f"{prefix}.{key.value}" if prefix else str(key.value)
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = f"{prefix}.{i}"
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    if root is not None:
        walk(root, "")
    return lines


def _line_of(field: str, lines: dict[str, int]) -> int | None:
    """The field's own line, else its nearest parent's (a missing key sits in its parent)."""
    parts = field.split(".")
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return line
        parts.pop()
    return None
