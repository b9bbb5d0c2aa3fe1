"""Layer rules, read from the source with ast: bundles import only the SDK (and libraries).

Built-in bundles are written exactly like third-party ones: `sdk`, the standard
library and installed packages, never the kernel, the UI, the tests or another
bundle. The SDK itself does not import the kernel at module level, except the
author tools that exist to drive it (validate, testing, scaffold, reference).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk.common import EXAMPLES, REPO_ROOT

FORBIDDEN_IN_BUNDLES = {"kernel", "ui", "plugins", "tests", "bench", "peftlab_bundles"}
SDK_TOOLS = {"validate.py", "testing.py", "scaffold.py", "reference.py"}


def bundle_folders() -> list[Path]:
    roots = [REPO_ROOT / "plugins", EXAMPLES]
    return sorted(p.parent for root in roots for p in root.rglob("plugin.yaml"))


def imports(tree: ast.AST, *, top_level_only: bool = False) -> Iterator[tuple[int, str, int]]:
    """(line, module, relative level) of every import; only module-level ones if asked."""
    nodes = tree.body if top_level_only and isinstance(tree, ast.Module) else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level


def bundle_import_problems(folder: Path) -> list[str]:
    own_modules = {p.stem for p in folder.glob("*.py")} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    problems = []
    for path in sorted(folder.rglob("*.py")):
        if path.name.startswith("test_"):
            continue  # an author's tests may use sdk.testing, which drives the kernel
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        depth = len(path.relative_to(folder).parts) - 1  # sub-packages may go up to the root
        for line, module, level in imports(tree):
            where = f"{path.relative_to(folder.parent)}:{line}"
            top = module.split(".")[0]
            if level > depth + 1:
                problems.append(f"{where}: relative import leaves the bundle folder")
            elif level == 0 and top in FORBIDDEN_IN_BUNDLES:
                problems.append(f"{where}: imports {module}; bundles may import only sdk")
            elif level == 0 and top in own_modules and top not in sys.stdlib_module_names:
                problems.append(f"{where}: absolute import of own module {module}; use 'from .'")
    return problems


@pytest.mark.parametrize("folder", bundle_folders(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_bundle_imports_only_the_sdk(folder: Path) -> None:
    assert bundle_import_problems(folder) == []


def test_every_kind_of_bundle_is_checked() -> None:
    kinds = {p.parent.parent.name for p in (REPO_ROOT / "plugins").glob("*/*/plugin.yaml")}
    assert {"techniques", "models", "datasets", "trainers"} <= kinds
    assert EXAMPLES / "folder-bundle" in bundle_folders()


def test_the_check_catches_what_it_should(tmp_path: Path) -> None:
    (tmp_path / "plugin.yaml").write_text("id: x\n")
    (tmp_path / "layers.py").write_text("X = 1\n")
    (tmp_path / "technique.py").write_text(
        "import json\nimport torch\nfrom sdk import Technique\nfrom . import layers\n"
        "from kernel.registry import Registry\nimport ui.cli\nfrom ..lora import technique\n"
        "import layers\n\ndef f():\n    from plugins.techniques.lora import technique\n"
    )
    problems = "\n".join(bundle_import_problems(tmp_path))
    assert "kernel.registry" in problems and "ui.cli" in problems
    assert "leaves the bundle folder" in problems and "plugins.techniques.lora" in problems
    assert "own module layers" in problems
    assert "json" not in problems and "torch" not in problems and ":3:" not in problems


def test_sdk_modules_do_not_import_the_kernel_at_module_level() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "sdk").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module, _ in imports(tree):
            if module.split(".")[0] in {"ui", "plugins", "tests"}:
                offenders.append(f"sdk/{path.name}:{line} imports {module}")
        if path.name in SDK_TOOLS:
            continue
        for line, module, _ in imports(tree, top_level_only=True):
            if module.split(".")[0] == "kernel":
                offenders.append(f"sdk/{path.name}:{line} imports {module} at module level")
    assert offenders == []


def test_the_public_surface_is_sdk_init() -> None:
    import sdk

    assert sdk.API_VERSION == 1
    for name in sdk.__all__:
        assert hasattr(sdk, name), name
    for base in ("Technique", "ModelProvider", "DatasetProvider", "TrainerPlugin"):
        assert base in sdk.__all__
