"""Links and special files in bundles: never copied out of place, never imported, reported."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kernel.errors import PluginLoadError
from kernel.jobs import snapshot_bundle
from tests.reliability.builders import kernel_for, peftlab, technique_bundle

GOOD = "from sdk import Technique\nfrom .helper import VALUE\n\n\nclass T(Technique):\n    def apply(self, model, ctx):\n        return model\n"


def _bundle(tmp_path: Path) -> Path:
    folder = technique_bundle(tmp_path / "plugins", "linky", GOOD)
    (folder / "helper.py").write_text("VALUE = 1\n", encoding="utf-8")
    return folder


def _bundle_modules() -> list[object]:
    import sys

    return [m for n, m in list(sys.modules.items()) if n.startswith("peftlab_bundles.")]


def _with_timeout(call, seconds: float = 20):  # noqa: ANN001, ANN202
    """Run `call` in a thread; a hang (copying /dev/zero, opening a pipe) fails the test."""
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.update(result=call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung on a link or a special file"
    return box.get("result")


def test_snapshot_skips_devices_pipes_and_links_out(tmp_path: Path) -> None:
    folder = _bundle(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("password", encoding="utf-8")
    (folder / "zero.bin").symlink_to("/dev/zero")
    (folder / "leak.txt").symlink_to(secret)
    os.mkfifo(folder / "pipe")
    (folder / "alias.py").symlink_to(folder / "helper.py")  # a link inside: a plain copy
    target = tmp_path / "run" / "bundles" / "technique"
    copied = _with_timeout(lambda: snapshot_bundle(folder, target))
    assert copied == target
    names = sorted(p.name for p in target.iterdir())
    assert names == ["alias.py", "helper.py", "plugin.yaml", "technique.py"]
    assert not (target / "alias.py").is_symlink()
    assert (target / "alias.py").read_text(encoding="utf-8") == "VALUE = 1\n"


def test_a_sibling_module_linked_to_outside_code_is_not_imported(tmp_path: Path) -> None:
    folder = _bundle(tmp_path)
    outside = tmp_path / "outside.py"
    outside.write_text("VALUE = 'outside code ran'\n", encoding="utf-8")
    (folder / "helper.py").unlink()
    (folder / "helper.py").symlink_to(outside)
    kernel = kernel_for(tmp_path / "plugins")
    with pytest.raises(PluginLoadError, match="helper.py: a link to outside the bundle"):
        kernel.snapshot.get("technique", "linky").load()
    assert not any(getattr(m, "VALUE", None) == "outside code ran" for m in _bundle_modules())


def test_validate_names_each_link_and_special_file(tmp_path: Path) -> None:
    folder = _bundle(tmp_path)
    (folder / "zero.bin").symlink_to("/dev/zero")
    (folder / "leak.txt").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(folder / "pipe")
    result = peftlab(tmp_path, "plugins", "validate", str(folder), timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in out
    assert "zero.bin: a link to outside the bundle" in out
    assert "leak.txt: a link to outside the bundle" in out
    assert "pipe: a named pipe" in out
