"""Hot reload against real watchdog events in a temporary plugin folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from kernel import Kernel, KernelConfig, PluginLoadError
from kernel.hotreload import HotReloader, is_noise, owning_bundle
from kernel.registry import Change

TIMEOUT = 5.0
MODULE = """from sdk import Technique


class T(Technique):
    VALUE = {value}

    def apply(self, model, ctx):
        return model
"""


def manifest(bundle_id: str = "tiny", **overrides: object) -> dict:
    data: dict = {
        "id": bundle_id,
        "kind": "technique",
        "name": "Tiny",
        "version": "1.0.0",
        "api": 1,
        "entry": "technique:T",
        "params": {"r": {"type": "int", "default": 4, "min": 1}},
    }
    data.update(overrides)
    return data


def write_manifest(folder: Path, data: dict) -> None:
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_bundle(folder: Path, bundle_id: str = "tiny", value: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "technique.py").write_text(MODULE.format(value=value), encoding="utf-8")
    write_manifest(folder, manifest(bundle_id))  # last, as a copy would finish
    return folder


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass
class Watched:
    kernel: Kernel
    root: Path
    reloader: HotReloader
    changes: list[Change] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.changes)

    def next_change(self, since: int, action: str | None = None) -> Change:
        def found() -> Change | None:
            return next(
                (c for c in self.changes[since:] if action is None or c.action == action), None
            )

        return wait_for(found)  # type: ignore[return-value]

    def settle(self) -> list[Change]:
        """Wait until late events had their chance, then return nothing: a helper for 'no more'."""
        time.sleep(self.reloader.debounce + 0.3)
        assert self.reloader.wait_idle(TIMEOUT)
        return self.changes

    def ids(self) -> list[str]:
        return self.kernel.snapshot.ids("technique")


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watched]:
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    root = tmp_path / "plugins"
    write_bundle(root / "techniques" / "tiny")
    config = KernelConfig(
        plugin_dirs=[root],
        builtin_dir=None,
        user_dir=tmp_path / "user",  # does not exist: not watched
        use_env_path=False,
        use_entry_points=False,
    )
    kernel = Kernel(config)
    kernel.discover()
    w = Watched(kernel, root.resolve(), reloader=None)  # type: ignore[arg-type]
    unsubscribe = kernel.events.subscribe(w.changes.append)
    w.reloader = kernel.start_watching()
    try:
        yield w
    finally:
        kernel.stop_watching()
        unsubscribe()


def tiny_folder(w: Watched) -> Path:
    return w.root / "techniques" / "tiny"


def test_watches_only_existing_plugin_folders(watched: Watched) -> None:
    assert watched.reloader.roots == [watched.root]
    assert watched.ids() == ["tiny"]


def test_new_bundle_folder_is_added(watched: Watched) -> None:
    since = watched.mark()
    folder = write_bundle(watched.root / "techniques" / "extra", "extra")
    change = watched.next_change(since, "added")
    assert change.key == ("technique", "extra")
    assert change.path == folder.resolve()
    assert watched.ids() == ["extra", "tiny"]


def test_manifest_edit_reloads_with_new_param(watched: Watched) -> None:
    folder = tiny_folder(watched)
    since = watched.mark()
    data = manifest()
    data["params"]["alpha"] = {"type": "float", "default": 0.5}
    write_manifest(folder, data)
    change = watched.next_change(since, "reloaded")
    assert change.key == ("technique", "tiny")
    assert set(watched.kernel.get("technique", "tiny").manifest.params) == {"r", "alpha"}
    assert "reloaded" in change.describe()


def test_syntax_error_keeps_last_good_version_until_fixed(watched: Watched) -> None:
    folder = tiny_folder(watched)
    good = watched.kernel.get("technique", "tiny")
    good_cls = good.load()
    original = (folder / "technique.py").read_text()

    since = watched.mark()
    (folder / "technique.py").write_text("from sdk import Technique\n\nclass T(Technique:\n")
    change = watched.next_change(since, "failed")
    assert change.key == ("technique", "tiny")
    assert change.error is not None
    assert change.error.path == str(folder.resolve() / "technique.py")
    assert change.error.line == 3
    assert "syntax error" in change.describe() and "last good version kept" in change.describe()

    active = watched.kernel.get("technique", "tiny")
    assert active is good  # the last good version stays registered ...
    assert active.instantiate().apply("model", None) == "model"  # ... and usable
    assert active.load() is good_cls
    (problem,) = watched.kernel.snapshot.problems.values()
    assert problem.error.line == 3

    since = watched.mark()
    (folder / "technique.py").write_text(original)  # back to exactly the last good content
    change = watched.next_change(since, "reloaded")
    assert change.key == ("technique", "tiny")
    assert not watched.kernel.snapshot.problems
    assert watched.kernel.get("technique", "tiny").load().VALUE == 1


def test_schema_error_names_the_field_and_fix_reloads(watched: Watched) -> None:
    folder = tiny_folder(watched)
    good = watched.kernel.get("technique", "tiny")
    good.load()

    since = watched.mark()
    broken = manifest()
    del broken["name"]
    write_manifest(folder, broken)
    change = watched.next_change(since, "failed")
    assert change.key == ("technique", "tiny")
    assert change.error is not None and change.error.field == "name"
    assert "[name]" in change.describe()
    assert watched.kernel.get("technique", "tiny") is good
    assert good.instantiate().apply("model", None) == "model"

    since = watched.mark()
    fixed = manifest(version="1.1.0")
    write_manifest(folder, fixed)
    watched.next_change(since, "reloaded")
    assert watched.kernel.get("technique", "tiny").manifest.version == "1.1.0"
    assert not watched.kernel.snapshot.problems


def test_objects_handed_out_before_a_reload_keep_working(watched: Watched) -> None:
    folder = tiny_folder(watched)
    old_bundle = watched.kernel.get("technique", "tiny")  # what a run would hold
    old_cls = old_bundle.load()
    old_instance = old_bundle.instantiate()

    since = watched.mark()
    (folder / "technique.py").write_text(MODULE.format(value=2))
    watched.next_change(since, "reloaded")

    new_bundle = watched.kernel.get("technique", "tiny")
    assert new_bundle is not old_bundle
    assert new_bundle.load().VALUE == 2
    assert new_bundle.load().__module__ != old_cls.__module__
    # The old version's modules are retired, yet its objects still work.
    assert old_bundle.load() is old_cls and old_cls.VALUE == 1
    assert old_instance.apply("model", None) == "model"
    assert old_bundle.instantiate().apply("model", None) == "model"


def test_failed_reload_of_a_never_imported_version_refuses_other_code(watched: Watched) -> None:
    folder = tiny_folder(watched)
    old = watched.kernel.get("technique", "tiny")
    assert not old.is_imported
    since = watched.mark()
    (folder / "technique.py").write_text("from sdk import Technique\n\nclass T(Technique:\n")
    watched.next_change(since, "failed")
    assert watched.kernel.get("technique", "tiny") is old
    # Its files are gone from disk: importing now would run the broken code under its name.
    with pytest.raises(PluginLoadError, match="changed since this version was read"):
        old.load()


def test_deleting_the_folder_unregisters_it(watched: Watched) -> None:
    since = watched.mark()
    shutil.rmtree(tiny_folder(watched))
    change = watched.next_change(since, "removed")
    assert change.key == ("technique", "tiny")
    assert watched.ids() == []


def test_deleting_only_the_manifest_unregisters_it(watched: Watched) -> None:
    since = watched.mark()
    (tiny_folder(watched) / "plugin.yaml").unlink()
    assert watched.next_change(since, "removed").key == ("technique", "tiny")
    assert watched.ids() == [] and not watched.kernel.snapshot.problems


# Moving a watched folder out and back in makes inotify reuse a watch; watchdog warns.
@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_moving_a_bundle_out_and_back_in(watched: Watched, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    since = watched.mark()
    shutil.move(tiny_folder(watched), outside)
    watched.next_change(since, "removed")
    assert watched.ids() == []

    since = watched.mark()
    shutil.move(outside, watched.root / "moved")
    change = watched.next_change(since, "added")
    assert change.path == (watched.root / "moved").resolve()
    assert watched.ids() == ["tiny"]


def test_manifest_arriving_last_is_picked_up(watched: Watched) -> None:
    folder = watched.root / "techniques" / "late"
    folder.mkdir()
    (folder / "technique.py").write_text(MODULE.format(value=7))
    since = len(watched.settle())
    assert watched.changes[since:] == [] and watched.ids() == ["tiny"]  # no plugin.yaml yet

    write_manifest(folder, manifest("late"))
    watched.next_change(since, "added")
    assert watched.kernel.get("technique", "late").load().VALUE == 7


def test_editor_save_by_rename_is_one_reload(watched: Watched) -> None:
    folder = tiny_folder(watched)
    since = watched.mark()
    (folder / "4913").write_text("")  # vim checks it may write here
    (folder / "4913").unlink()
    (folder / ".technique.py.swp").write_bytes(b"\0swap")
    temp = folder / "technique.py.tmp"
    temp.write_text(MODULE.format(value=3))
    os.replace(temp, folder / "technique.py")
    (folder / ".technique.py.swp").unlink()

    watched.next_change(since, "reloaded")
    changes = watched.settle()[since:]
    assert [c.action for c in changes] == ["reloaded"]
    assert watched.kernel.get("technique", "tiny").load().VALUE == 3


def test_several_files_written_together_are_one_reload(watched: Watched) -> None:
    folder = tiny_folder(watched)
    since = watched.mark()
    (folder / "helper.py").write_text("FACTOR = 2\n")
    (folder / "technique.py").write_text(MODULE.format(value=4))
    write_manifest(folder, manifest(version="2.0.0"))

    watched.next_change(since, "reloaded")
    changes = watched.settle()[since:]
    assert [c.action for c in changes] == ["reloaded"]
    bundle = watched.kernel.get("technique", "tiny")
    assert bundle.manifest.version == "2.0.0" and bundle.load().VALUE == 4


def test_noise_and_identical_content_publish_nothing(watched: Watched) -> None:
    folder = tiny_folder(watched)
    since = watched.mark()
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "technique.cpython-311.pyc").write_bytes(b"cache")
    (folder / ".notes").write_text("dotfile")
    (folder / "technique.py~").write_text("backup")
    (folder / "technique.py").write_text((folder / "technique.py").read_text())  # same bytes
    assert watched.settle()[since:] == []


def test_stop_leaves_no_threads_running(watched: Watched) -> None:
    reloader = watched.reloader
    # this reloader's worker (cached app kernels of other tests may still be watching)
    worker = reloader._worker
    assert worker is not None and worker.is_alive() and worker.name == "peftlab-hot-reload"
    watched.kernel.stop_watching()
    assert not reloader.running and reloader.roots == []
    assert not worker.is_alive() and worker not in threading.enumerate()
    since = watched.mark()
    write_bundle(watched.root / "after_stop", "after")
    time.sleep(reloader.debounce + 0.2)
    assert watched.changes[since:] == []


def test_owning_bundle_maps_nested_paths(tmp_path: Path) -> None:
    root = tmp_path
    bundle = write_bundle(root / "techniques" / "tiny")
    inner = bundle / "sub" / "deeper"
    inner.mkdir(parents=True)
    assert owning_bundle(bundle / "technique.py", root, False, set()) == bundle
    assert owning_bundle(inner / "x.py", root, False, set()) == bundle
    assert owning_bundle(bundle / "__pycache__" / "t.pyc", root, False, set()) is None
    assert owning_bundle(root / "techniques" / "gone" / "plugin.yaml", root, False, set()) is None
    gone = root / "techniques" / "gone"
    assert owning_bundle(gone / "plugin.yaml", root, False, {gone}) == gone
    assert owning_bundle(gone, root, True, {gone}) == gone
    assert all(is_noise(n) for n in ("4913", ".#t.py", "t.py~", "#t.py#", "t.pyc", ".t.py.swp"))
    assert not is_noise("technique.py")


def test_cli_watch_prints_one_line_per_change(tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    root.mkdir()
    env = {**os.environ, "PEFTLAB_HOME": str(tmp_path / "home")}
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    command = [sys.executable, "-m", "ui.cli", "--no-entry-points", "--plugins-dir", str(root)]
    process = subprocess.Popen(
        [*command, "plugins", "watch"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("watching") for line in lines), timeout=20)
        write_bundle(root / "cli_demo", "cli_demo")
        wait_for(lambda: any(line.startswith("added") for line in lines))
        (root / "cli_demo" / "technique.py").write_text("class T(:\n")
        wait_for(lambda: any(line.startswith("failed") for line in lines))
        shutil.rmtree(root / "cli_demo")
        wait_for(lambda: any(line.startswith("removed") for line in lines))
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        reader.join(timeout=5)
    assert code == 0, "".join(lines)
    changes = [line for line in lines if line.split(" ", 1)[0] in ("added", "failed", "removed")]
    assert len(changes) == 3, "".join(lines)
    assert "technique 'cli_demo'" in changes[0]
    assert "technique.py:1" in changes[1] and "last good version kept" in changes[1]
    assert lines[-1].strip() == "stopped watching"


@pytest.fixture
def missing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watched]:
    """A kernel whose only plugin folder (two levels deep) does not exist yet."""
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    root = tmp_path / "home" / "plugins"
    config = KernelConfig(
        plugin_dirs=[root],
        builtin_dir=None,
        user_dir=root,
        use_env_path=False,
        use_entry_points=False,
    )
    kernel = Kernel(config)
    kernel.discover()
    w = Watched(kernel, root, reloader=None)  # type: ignore[arg-type]
    unsubscribe = kernel.events.subscribe(w.changes.append)
    w.reloader = kernel.start_watching()
    try:
        yield w
    finally:
        kernel.stop_watching()
        unsubscribe()


def test_a_plugin_folder_created_after_the_start_is_watched(missing_root: Watched) -> None:
    w = missing_root
    assert w.reloader.roots == [] and w.ids() == []
    assert w.reloader.parent_watches == [w.root.parent.parent.resolve()]
    since = w.mark()
    w.root.mkdir(parents=True)  # home, then plugins: each new level is watched in turn
    wait_for(lambda: w.reloader.roots == [w.root.resolve()])
    write_bundle(w.root / "techniques" / "late", "late")
    assert w.next_change(since, "added").key == ("technique", "late")
    assert w.ids() == ["late"]
    assert w.reloader.parent_watches == []


def test_a_bundle_copied_in_with_its_new_plugin_folder_is_added(
    missing_root: Watched, tmp_path: Path
) -> None:
    w = missing_root
    w.root.parent.mkdir()
    staged = tmp_path / "staged"
    write_bundle(staged / "techniques" / "copied", "copied")
    since = w.mark()
    shutil.move(str(staged), str(w.root))  # the whole plugins folder arrives at once
    assert w.next_change(since, "added").key == ("technique", "copied")


def test_a_deleted_plugin_folder_is_watched_again_when_it_returns(missing_root: Watched) -> None:
    w = missing_root
    write_bundle(w.root / "techniques" / "first", "first")
    wait_for(lambda: w.ids() == ["first"])
    since = w.mark()
    shutil.rmtree(w.root)
    assert w.next_change(since, "removed").key == ("technique", "first")
    wait_for(lambda: w.reloader.roots == [])
    since = w.mark()
    write_bundle(w.root / "techniques" / "second", "second")
    assert w.next_change(since, "added").key == ("technique", "second")
    assert w.ids() == ["second"]


def test_cli_watch_notices_a_plugin_folder_created_later(tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    env = {**os.environ, "PEFTLAB_HOME": str(tmp_path / "home")}
    env.pop("PEFTLAB_PLUGIN_PATH", None)
    command = [sys.executable, "-m", "ui.cli", "--no-entry-points", "--plugins-dir", str(root)]
    process = subprocess.Popen(
        [*command, "plugins", "watch"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(line.startswith("watching") for line in lines), timeout=20)
        write_bundle(root / "cli_late", "cli_late")
        wait_for(lambda: any(line.startswith("added") for line in lines))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        reader.join(timeout=5)
    assert str(root) not in lines[0]  # not watched at the start: it did not exist
    assert any("technique 'cli_late'" in line for line in lines), "".join(lines)
