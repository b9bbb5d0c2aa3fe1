"""Storage failures: a full or read-only runs folder gives one line, leaves no half-made
run folder, and the reason of a failure survives where nothing can be written."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.errors import RunError
from kernel.runs import RunFolder
from tests.reliability.builders import peftlab


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs permission to mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip("cannot mount a small filesystem here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _args(tiny_models, tiny_csv_dir) -> list[str]:
    return [
        "train", "--dataset", "rotten_tomatoes", "--set", f"dataset.path={tiny_csv_dir}",
        "--model", "bert", "--set", f"model.name_or_path={tiny_models['bert']}",
        "--set", "trainer.max_steps=1",
    ]  # fmt: skip


def test_a_full_disk_gives_one_line_and_no_half_made_folder(
    small_disk: Path, tiny_models, tiny_csv_dir
) -> None:
    runs = small_disk / "runs"
    runs.mkdir()
    fill(small_disk)
    result = peftlab(small_disk.parent, "--runs-dir", str(runs), *_args(tiny_models, tiny_csv_dir))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no space left on device" in result.stderr
    assert list(runs.iterdir()) == []


def test_a_read_only_runs_folder_gives_one_line(
    small_disk: Path, tiny_models, tiny_csv_dir
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = peftlab(small_disk.parent, "--runs-dir", str(small_disk / "runs"),
                     *_args(tiny_models, tiny_csv_dir))  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "read-only file system" in result.stderr


def test_a_run_that_cannot_record_its_failure_says_why_on_the_cli(
    small_disk: Path, tiny_models, tiny_csv_dir
) -> None:
    runs = small_disk / "runs"
    prepared = peftlab(small_disk.parent, "--runs-dir", str(runs),
                       *_args(tiny_models, tiny_csv_dir), "--prepare-only")  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    run = RunFolder(Path(prepared.stdout.strip()))
    fill(small_disk)
    result = peftlab(small_disk.parent, "--runs-dir", str(runs), "train", "--resume", run.id)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "the run folder could not be written: no space left on device" in result.stdout


def test_prepare_run_removes_the_folder_it_could_not_fill(tmp_path: Path, monkeypatch) -> None:
    from kernel import runs as runs_module
    from kernel.jobs import prepare_run
    from tests.reliability.builders import kernel_for, tiny_recipe

    kernel = kernel_for()
    from kernel.recipe import resolve

    resolved = resolve(tiny_recipe(tmp_path, tmp_path), kernel.snapshot, kernel.graph())

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs_module, "atomic_write_text", full)
    with pytest.raises(RunError, match="no space left on device"):
        prepare_run(resolved, tmp_path / "runs")
    assert list((tmp_path / "runs").iterdir()) == []
