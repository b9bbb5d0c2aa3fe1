"""Discovery from folders and entry points, the registry's rules, lazy versioned imports."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from kernel.config import BUILTIN_PLUGINS
from kernel.errors import PluginLoadError, UnknownPluginError
from kernel.registry import DuplicateBundleWarning, describe_status
from tests.kernel.bundles import technique_manifest, write_bundle


def test_builtins_are_discovered(make_kernel) -> None:
    kernel = make_kernel(builtin=True)
    snap = kernel.snapshot
    assert {"lora", "full"} <= set(snap.ids("technique"))
    assert "minilm" in snap.ids("model")
    assert "demo" in snap.ids("dataset")
    assert snap.ids("trainer") == ["hf_trainer"]
    assert not snap.problems


def test_copied_builtin_with_new_id_appears_and_deleting_removes_it(
    make_kernel, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    copy = plugins / "lora_copy"
    shutil.copytree(BUILTIN_PLUGINS / "techniques" / "lora", copy)
    data = yaml.safe_load((copy / "plugin.yaml").read_text())
    data["id"] = "lora_copy"
    (copy / "plugin.yaml").write_text(yaml.safe_dump(data))
    kernel = make_kernel(plugins, builtin=True)
    bundle = kernel.get("technique", "lora_copy")
    assert bundle.origin == "path"
    assert "lora_copy" in kernel.graph().options("technique", {"model": "minilm"})
    shutil.rmtree(copy)
    kernel.discover()
    assert "lora_copy" not in kernel.snapshot.ids("technique")


def test_broken_bundles_are_listed_and_the_rest_loads(make_kernel, tmp_path: Path) -> None:
    write_bundle(tmp_path, "good", technique_manifest("good"))
    write_bundle(tmp_path, "bad_yaml", "id: [\n")
    write_bundle(
        tmp_path, "no_name", {k: v for k, v in technique_manifest("noname").items() if k != "name"}
    )
    write_bundle(tmp_path, "no_module", technique_manifest("nomodule"), module=None)
    kernel = make_kernel(tmp_path)
    assert kernel.snapshot.ids("technique") == ["good"]
    rows = {Path(r["path"]).name: r for r in describe_status(kernel.snapshot)}
    assert rows["bad_yaml"]["status"] == "broken" and "not valid YAML" in rows["bad_yaml"]["error"]
    assert "[name]" in rows["no_name"]["error"]
    assert rows["no_module"]["id"] == "nomodule"
    assert "entry module 'technique' not found" in rows["no_module"]["error"]


def test_duplicate_ids_higher_priority_wins_with_a_warning(
    make_kernel, tmp_path: Path, monkeypatch
) -> None:
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    write_bundle(explicit, "a", technique_manifest("same", version="2.0.0"))
    write_bundle(env, "b", technique_manifest("same", version="1.0.0"))
    monkeypatch.setenv("PEFTLAB_PLUGIN_PATH", str(env))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kernel = make_kernel(explicit)
    assert kernel.get("technique", "same").manifest.version == "2.0.0"
    messages = [str(w.message) for w in caught if issubclass(w.category, DuplicateBundleWarning)]
    assert messages and "wins over" in messages[0] and str(env) in messages[0]
    rows = [r for r in describe_status(kernel.snapshot) if r["id"] == "same"]
    assert sorted(str(r["status"]).split()[0] for r in rows) == ["ok", "shadowed"]


def test_user_folder_overrides_builtin(make_kernel, isolated_env: Path) -> None:
    user = isolated_env / "plugins"
    write_bundle(user, "lora", technique_manifest("lora", version="9.9.9"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateBundleWarning)
        kernel = make_kernel(builtin=True)
    assert kernel.get("technique", "lora").origin == "user"


def test_unknown_id_lists_the_choices(make_kernel, tmp_path: Path) -> None:
    write_bundle(tmp_path, "a", technique_manifest("alpha"))
    kernel = make_kernel(tmp_path)
    with pytest.raises(UnknownPluginError, match="available: alpha"):
        kernel.get("technique", "beta")


def test_import_is_lazy_versioned_and_confined(make_kernel, tmp_path: Path) -> None:
    folder = write_bundle(tmp_path, "echo", technique_manifest("echo"))
    (folder / "helper.py").write_text("VALUE = 41\n")
    (folder / "technique.py").write_text(
        "from sdk import Technique\nfrom .helper import VALUE\n\n"
        "class Echo(Technique):\n    value = VALUE + 1\n    def apply(self, model, ctx):\n        return model\n"
    )
    kernel = make_kernel(tmp_path)
    bundle = kernel.get("technique", "echo")
    assert not bundle.is_imported
    cls = bundle.load()
    assert cls.value == 42
    assert cls.__module__.startswith("peftlab_bundles.technique.echo.v")
    assert cls.__module__ == f"peftlab_bundles.technique.echo.v{bundle.content_hash[:8]}.technique"
    assert sys.modules[cls.__module__].__file__ == str(folder / "technique.py")


def test_entry_module_outside_bundle_cannot_be_reached(make_kernel, tmp_path: Path) -> None:
    # A module of the same name next to the bundle (or on sys.path) must not be picked up.
    (tmp_path / "outside.py").write_text("raise SystemExit('must not run')\n")
    write_bundle(tmp_path / "plugins", "echo", technique_manifest("echo", entry="outside:Echo"))
    kernel = make_kernel(tmp_path / "plugins")
    assert kernel.snapshot.ids("technique") == []
    (problem,) = kernel.snapshot.problems.values()
    assert "entry module 'outside' not found" in str(problem.error)


IMPORT_FAULTS = [
    ("syntax", "def broken(:\n", "syntax error", 1),
    ("raises", "raise RuntimeError('boom at import')\n", "RuntimeError: boom at import", 1),
    ("missing dependency", "import surely_not_installed_pkg\n", "surely_not_installed_pkg", None),
    ("no attribute", "X = 1\n", "has no attribute 'Echo'", None),
]


@pytest.mark.parametrize(
    ("case", "module", "message", "line"), IMPORT_FAULTS, ids=[c[0] for c in IMPORT_FAULTS]
)
def test_import_errors_name_the_file(
    make_kernel, tmp_path: Path, case, module, message, line
) -> None:
    write_bundle(tmp_path, "ok", technique_manifest("ok"))
    folder = write_bundle(tmp_path, "faulty", technique_manifest("faulty"), module=module)
    kernel = make_kernel(tmp_path)
    with pytest.raises(PluginLoadError) as info:
        kernel.get("technique", "faulty").load()
    assert message in str(info.value)
    assert info.value.path in (str(folder / "technique.py"), str(folder / "plugin.yaml"))
    if line is not None:
        assert info.value.line == line
    if case == "missing dependency":
        assert "missing dependency" in str(info.value)
    assert kernel.get("technique", "ok").load().__name__ == "Echo"
    assert not [m for m in sys.modules if ".faulty.v" in m]  # a failed import leaves nothing behind


def test_same_size_edit_within_a_second_imports_new_code(
    make_kernel, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    folder = write_bundle(
        tmp_path, "echo", technique_manifest("echo"), module=TECHNIQUE_WITH_VALUE.format(value=1)
    )
    kernel = make_kernel(tmp_path)
    assert kernel.get("technique", "echo").load().value == 1
    stat = (folder / "technique.py").stat()
    (folder / "technique.py").write_text(TECHNIQUE_WITH_VALUE.format(value=2))
    os.utime(
        folder / "technique.py", ns=(stat.st_atime_ns, stat.st_mtime_ns)
    )  # same size, same mtime
    change = kernel.registry.update_folder(kernel.get("technique", "echo").location)
    assert change.action == "reloaded"
    assert kernel.get("technique", "echo").load().value == 2
    assert not list(folder.rglob("*.pyc"))


def test_sys_exit_at_import_is_a_load_error(make_kernel, tmp_path: Path) -> None:
    write_bundle(
        tmp_path, "quitter", technique_manifest("quitter"), module="import sys\nsys.exit(3)\n"
    )
    kernel = make_kernel(tmp_path)
    with pytest.raises(PluginLoadError, match="SystemExit"):
        kernel.get("technique", "quitter").load()


TECHNIQUE_WITH_VALUE = (
    "from sdk import Technique\n\n\nclass Echo(Technique):\n    value = {value}\n\n"
    "    def apply(self, model, ctx):\n        return model\n"
)


def test_first_given_plugin_dir_wins(make_kernel, tmp_path: Path) -> None:
    first, second = tmp_path / "zz_first", tmp_path / "aa_second"  # names sort the other way
    write_bundle(first, "a", technique_manifest("same", version="1.0.0"))
    write_bundle(second, "a", technique_manifest("same", version="2.0.0"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateBundleWarning)
        kernel = make_kernel(first, second)
    assert kernel.get("technique", "same").manifest.version == "1.0.0"
