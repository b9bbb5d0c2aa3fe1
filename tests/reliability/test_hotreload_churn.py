"""Hot reload under churn: hundreds of edits, some broken, while a run holds the bundle.

Real watchdog events on a temporary plugin folder. The object a run obtained
before the edits keeps its version throughout; every snapshot pairs a manifest
with the code of the same edit; the registry ends on the last valid version.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kernel import Kernel, KernelConfig
from kernel.registry import Change

EDITS = 200
DEBOUNCE = 0.02
MODULE = """from sdk import Technique

from .words import TAG


class T(Technique):
    VALUE = {n}

    def apply(self, model, ctx):
        return (self.VALUE, TAG, model)
"""
WORDS = 'TAG = "edit {n}"\n'
BROKEN_MODULE = "from sdk import Technique\n\nclass T(Technique:\n"


def manifest_text(n: int, *, valid: bool = True) -> str:
    data = {
        "id": "churn",
        "kind": "technique",
        "name": "Churn",
        "version": f"1.0.{n}",
        "api": 1 if valid else "one",
        "entry": "technique:T",
        "params": {"r": {"type": "int", "default": n + 1, "min": 1}},
    }
    return yaml.safe_dump(data, sort_keys=False)


class Disk:
    """Every state the bundle folder was in: (manifest version, module VALUE, words.py TAG).

    One save writes three files, so a reader may meet a folder between two of them;
    what it must never publish is a mix that was never on disk (a torn read).
    """

    def __init__(self) -> None:
        self.current: dict[str, object] = {"manifest": "1.0.0", "module": 0, "words": "edit 0"}
        self.states = {self.state()}

    def state(self) -> tuple:
        return (self.current["manifest"], self.current["module"], self.current["words"])

    def wrote(self, part: str, value: object) -> None:
        self.current[part] = value
        self.states.add(self.state())


def write_edit(folder: Path, n: int, kind: str = "valid", disk: Disk | None = None) -> None:
    """One save of the bundle: words.py, module, manifest (the order a copy would use)."""
    disk = disk or Disk()
    (folder / "words.py").write_text(WORDS.format(n=n), encoding="utf-8")
    disk.wrote("words", f"edit {n}")
    module = BROKEN_MODULE if kind == "syntax" else MODULE.format(n=n)
    (folder / "technique.py").write_text(module, encoding="utf-8")
    disk.wrote("module", None if kind == "syntax" else n)
    (folder / "plugin.yaml").write_text(manifest_text(n, valid=kind != "manifest"), "utf-8")
    disk.wrote("manifest", None if kind == "manifest" else f"1.0.{n}")


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Kernel, Path]]:
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    root = tmp_path / "plugins"
    folder = root / "churn"
    folder.mkdir(parents=True)
    write_edit(folder, 0)
    kernel = Kernel(
        KernelConfig(
            plugin_dirs=[root],
            builtin_dir=None,
            user_dir=tmp_path / "user",
            use_env_path=False,
            use_entry_points=False,
        )
    )
    kernel.discover()
    kernel.start_watching(debounce=DEBOUNCE)
    # These tests are about swapping versions under churn; the child-process trial import a
    # watching process adds to each reload (test_import_faults.py) would only slow them down.
    monkeypatch.setattr("kernel.registry.imports_guarded", lambda: False)
    try:
        yield kernel, folder.resolve()
    finally:
        kernel.stop_watching()


def settle(kernel: Kernel) -> None:
    time.sleep(DEBOUNCE + 0.4)  # late watchdog events get their turn
    assert kernel._reloader is not None and kernel._reloader.wait_idle(30)


def active(kernel: Kernel) -> tuple[str, int, str]:
    bundle = kernel.get("technique", "churn")
    value, tag, _ = bundle.instantiate().apply(None, None)
    return bundle.manifest.version, value, tag


def test_200_edits_while_a_run_holds_the_bundle(churn: tuple[Kernel, Path]) -> None:
    kernel, folder = churn
    changes: list[Change] = []
    kernel.events.subscribe(changes.append)
    held = kernel.get("technique", "churn").instantiate()  # what the run started with
    assert held.apply("m", None) == (0, "edit 0", "m")

    stop = threading.Event()
    run_results: set[tuple] = set()
    published: set[tuple] = set()
    disk = Disk()

    def run_uses_its_plugin() -> None:
        while not stop.is_set():
            run_results.add(held.apply("m", None))
            time.sleep(0.001)

    def ui_reads_snapshots() -> None:
        while not stop.is_set():
            bundle = kernel.snapshot.bundles.get(("technique", "churn"))
            if bundle is not None and bundle.is_imported:
                value, tag, _ = bundle.instantiate().apply(None, None)
                published.add((bundle.manifest.version, value, tag))
            time.sleep(0.001)

    threads = [
        threading.Thread(target=run_uses_its_plugin),
        threading.Thread(target=ui_reads_snapshots),
    ]
    for thread in threads:
        thread.start()
    pace = random.Random(9)
    try:
        for n in range(1, EDITS + 1):
            kind = "syntax" if n % 10 == 3 else "manifest" if n % 10 == 7 else "valid"
            write_edit(folder, n, kind, disk)
            time.sleep(pace.choice([0, 0, 0.002, 0.005, 0.03]))  # some pauses outlast the debounce
        settle(kernel)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    # the run saw only the version it started with, from start to end
    assert run_results == {(0, "edit 0", "m")}
    # every version the UI could see was a state the folder was really in
    assert published and published <= disk.states, sorted(published - disk.states)
    # reloads happened during the churn, and broken edits were refused on the way
    assert sum(c.action == "reloaded" for c in changes) >= 2
    assert any(c.action == "failed" for c in changes)
    # the registry ends on the last edit, which was valid
    assert active(kernel) == (f"1.0.{EDITS}", EDITS, f"edit {EDITS}")
    assert kernel.get("technique", "churn").manifest.params["r"].default == EDITS + 1
    assert not kernel.snapshot.problems

    # a broken edit now keeps that last valid version and says why; fixing it clears that
    for n, kind, field in ((EDITS + 1, "syntax", None), (EDITS + 2, "manifest", "api")):
        since = len(changes)
        write_edit(folder, n, kind)
        settle(kernel)
        failed = [c for c in changes[since:] if c.action == "failed"]
        assert failed and failed[-1].kept_previous, changes[since:]
        assert failed[-1].error.field == field
        assert active(kernel) == (f"1.0.{EDITS}", EDITS, f"edit {EDITS}")
        assert folder in kernel.snapshot.problems
    write_edit(folder, EDITS + 3)
    settle(kernel)
    assert active(kernel) == (f"1.0.{EDITS + 3}", EDITS + 3, f"edit {EDITS + 3}")
    assert not kernel.snapshot.problems
    assert held.apply("m", None) == (0, "edit 0", "m")


# the two windows the churn test hits by chance, opened on purpose -----------------------


def registry_with_bundle(tmp_path: Path) -> tuple[Kernel, Path]:
    folder = tmp_path / "plugins" / "churn"
    folder.mkdir(parents=True)
    write_edit(folder, 0)
    kernel = Kernel(
        KernelConfig(
            plugin_dirs=[tmp_path / "plugins"],
            builtin_dir=None,
            user_dir=tmp_path / "user",
            use_env_path=False,
            use_entry_points=False,
        )
    )
    kernel.discover()
    assert active(kernel) == ("1.0.0", 0, "edit 0")  # imported, as a run would have it
    return kernel, folder.resolve()


def test_an_edit_right_after_the_manifest_is_parsed_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kernel.registry as registry_module

    kernel, folder = registry_with_bundle(tmp_path)
    real_load_manifest = registry_module.load_manifest

    def parse_then_edit(path: Path):  # noqa: ANN202
        manifest = real_load_manifest(path)
        monkeypatch.setattr(registry_module, "load_manifest", real_load_manifest)
        write_edit(folder, 2)  # the next save lands just after the parse
        return manifest

    write_edit(folder, 1)
    monkeypatch.setattr(registry_module, "load_manifest", parse_then_edit)
    location = kernel.get("technique", "churn").location
    first = kernel.registry.update_folder(location)
    assert first.action == "failed" and "changed since this version was read" in str(first.error)
    assert active(kernel) == ("1.0.0", 0, "edit 0")  # nothing half-read was published
    second = kernel.registry.update_folder(location)  # what edit 2's own event does
    assert second.action == "reloaded"
    assert active(kernel) == ("1.0.2", 2, "edit 2")


def test_an_edit_during_the_import_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kernel.registry as registry_module

    kernel, folder = registry_with_bundle(tmp_path)
    real_import = registry_module.import_entry

    def import_then_edit(manifest, path, version_hash):  # noqa: ANN001, ANN202
        entry = real_import(manifest, path, version_hash)
        monkeypatch.setattr(registry_module, "import_entry", real_import)
        (folder / "words.py").write_text(WORDS.format(n=2))  # edit 2 begins
        return entry

    write_edit(folder, 1)
    monkeypatch.setattr(registry_module, "import_entry", import_then_edit)
    location = kernel.get("technique", "churn").location
    assert kernel.registry.update_folder(location).action == "failed"
    assert active(kernel) == ("1.0.0", 0, "edit 0")
    write_edit(folder, 2)  # edit 2 ends
    assert kernel.registry.update_folder(location).action == "reloaded"
    assert active(kernel) == ("1.0.2", 2, "edit 2")
