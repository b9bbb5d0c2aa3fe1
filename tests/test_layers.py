"""Who may import whom, for every layer (docs/architecture.md), read from the source with ast.

faces (ui/, peftlab/) -> authoring/ -> engine/ -> sdk/ -> kernel/ (manifest and param types
only); plugins/ import only the SDK (tests/sdk/test_boundaries.py checks bundles one by
one). Lazy imports inside functions count the same as module-level ones.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ML_LIBRARIES = {"torch", "transformers", "peft", "accelerate", "datasets", "bitsandbytes"}
PRODUCT_LAYERS = {"kernel", "sdk", "engine", "authoring", "ui", "peftlab", "plugins"}
#: sdk modules kept only so that code written against the old names still imports them
SDK_REEXPORTS = {"sdk/testing.py", "sdk/validate.py", "sdk/scaffold.py", "sdk/reference.py"}
SDK_KERNEL_TYPES = {"kernel.manifest", "kernel.params", "kernel.errors"}

#: layer -> product layers it must not import
FORBIDDEN = {
    "kernel": PRODUCT_LAYERS - {"kernel"},
    "sdk": {"engine", "authoring", "ui", "peftlab", "plugins"},
    "engine": {"authoring", "ui", "peftlab", "plugins"},
    "authoring": {"ui", "peftlab", "plugins"},
    "ui": {"plugins"},
    "peftlab": {"ui", "plugins"},
}
#: modules the faces must reach only through the engine's public calls
FACE_FORBIDDEN_MODULES = {"engine.runner", "engine.plugins"}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def layer_files(layer: str) -> list[Path]:
    folder = ROOT / layer
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def problems_of(layer: str, path: Path) -> list[str]:
    where = path.relative_to(ROOT).as_posix()
    found = []
    for line, module in imported_modules(path):
        top = module.split(".")[0]
        if where in SDK_REEXPORTS and module == f"authoring.{path.stem}":
            continue  # checked by test_sdk_reexports_only_reexport
        if top in FORBIDDEN.get(layer, set()):
            found.append(f"{where}:{line}: {layer}/ imports {module}")
        elif layer == "kernel" and top in ML_LIBRARIES:
            found.append(f"{where}:{line}: the kernel imports {module}")
        elif layer == "sdk" and top == "kernel" and where not in SDK_REEXPORTS:
            if module not in SDK_KERNEL_TYPES:
                found.append(f"{where}:{line}: sdk/ imports {module} (only kernel types)")
        elif layer in ("ui", "peftlab") and module in FACE_FORBIDDEN_MODULES:
            found.append(f"{where}:{line}: a face imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_follow_the_rules(layer: str) -> None:
    problems = [p for path in layer_files(layer) for p in problems_of(layer, path)]
    assert problems == []


def test_sdk_reexports_only_reexport() -> None:
    for name in SDK_REEXPORTS:
        modules = {m for _, m in imported_modules(ROOT / name)} - {"sys"}
        assert modules == {f"authoring.{Path(name).stem}"}, name


def test_the_rules_catch_what_they_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nfrom sdk.base import Technique\n\n"
        "def later():\n    from engine.runner import main\n    import kernel.jobs\n"
    )
    found = _problems_outside_root("kernel", bad)
    assert any("imports torch" in p for p in found)
    assert any("imports sdk.base" in p for p in found)
    assert any("imports engine.runner" in p for p in found)
    assert _problems_outside_root("ui", bad) == ["bad.py:5: a face imports engine.runner"]
    assert any("only kernel types" in p for p in _problems_outside_root("sdk", bad))


def _problems_outside_root(layer: str, path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return problems_of(layer, path)
    finally:
        ROOT = saved
