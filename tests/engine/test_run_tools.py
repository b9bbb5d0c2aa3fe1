"""Engine pieces behind the app's run tools: effective values, the run queue, run meta and
deletion, adapter archives, the evaluation report and the runner's log filter."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from engine import effective, examine, export, manage, queue
from engine.report import run_settings, settings_diff
from engine.runner import quiet_known_noise
from kernel import Kernel, KernelConfig, RunError
from kernel.jobs import prepare_run
from kernel.recipe import PluginChoice, Recipe, resolve
from kernel.runs import RunFolder


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    kernel = Kernel(KernelConfig(use_entry_points=False, use_env_path=False))
    kernel.discover()
    return kernel


def _recipe(technique: str, **trainer: object) -> Recipe:
    return Recipe(
        name=f"demo {technique}",
        dataset=PluginChoice(id="demo"),
        model=PluginChoice(id="minilm"),
        technique=PluginChoice(id=technique),
        trainer=PluginChoice(id="hf_trainer", params=dict(trainer)),
    )


def _prepared(kernel: Kernel, runs: Path, technique: str, **trainer: object) -> RunFolder:
    resolved = resolve(_recipe(technique, **trainer), kernel.snapshot, kernel.graph())
    return prepare_run(resolved, runs)


def test_a_learning_rate_of_zero_is_the_techniques_recommended_rate(kernel):
    chosen = {"dataset": "demo", "model": "minilm", "technique": "lora", "trainer": "hf_trainer"}
    lora = effective.for_choices(kernel.snapshot, chosen, {"trainer": {"learning_rate": 0}})
    ia3 = effective.for_choices(
        kernel.snapshot, {**chosen, "technique": "ia3"}, {"trainer": {"learning_rate": 0}}
    )
    assert lora["trainer.learning_rate"] == 0.002 and ia3["trainer.learning_rate"] == 0.03
    minilm = kernel.snapshot.get("model", "minilm").manifest.model
    assert lora["technique.target_modules"] == minilm.default_target_modules
    chosen_rate = effective.for_choices(
        kernel.snapshot, chosen, {"trainer": {"learning_rate": 1e-4}}
    )
    assert "trainer.learning_rate" not in chosen_rate  # a rate someone set is no placeholder


def test_the_settings_diff_shows_the_rates_two_runs_used(kernel, tmp_path):
    lora = _prepared(kernel, tmp_path, "lora", learning_rate=0)
    time.sleep(1.1)  # run folders are named by the second
    ia3 = _prepared(kernel, tmp_path, "ia3", learning_rate=0)
    diff = settings_diff({"lora": run_settings(lora), "ia3": run_settings(ia3)})
    assert diff["trainer.learning_rate"] == ["0.002 (from 0)", "0.03 (from 0)"]
    ia3.write_results({"learning_rate": 0.05})  # what the trainer says it used wins
    assert effective.for_run(ia3)["trainer.learning_rate"] == 0.05


def test_effective_values_are_recorded_when_a_run_starts(kernel, tmp_path):
    from engine.plugins import load_run_plugins

    run = _prepared(kernel, tmp_path, "lora")
    recorded = effective.record_for_run(run, load_run_plugins(run))
    assert json.loads((run.path / effective.EFFECTIVE_FILE).read_text()) == recorded
    assert recorded["trainer.learning_rate"] == 0.002


def _sleeper(run: RunFolder) -> subprocess.Popen:
    """A process the run records as its own, as the runner does."""
    from kernel.procs import ProcessIdentity

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = ProcessIdentity.of(process.pid)
    run.set_status("running", pid=process.pid, pid_started=identity.started)
    return process


def test_queued_runs_wait_while_one_trains_and_start_in_order(kernel, tmp_path, monkeypatch):
    started: list[str] = []

    def fake_start(run: RunFolder, **_kw: object) -> subprocess.Popen:
        started.append(run.id)
        return _sleeper(run)

    monkeypatch.setattr("engine.process.start_run", fake_start)
    first = _prepared(kernel, tmp_path, "lora")
    time.sleep(1.1)
    second = _prepared(kernel, tmp_path, "ia3")
    assert queue.enqueue(first) == 1 and queue.enqueue(second) == 2
    assert [r.id for r in queue.queued(tmp_path)] == [first.id, second.id]
    run, process = queue.start_next(tmp_path)
    try:
        assert run.id == first.id and queue.is_live(first)
        assert queue.start_next(tmp_path) is None  # one at a time
        assert second.status()["state"] == "queued"
    finally:
        process.kill()
        process.wait()
    run, process = queue.start_next(tmp_path)
    process.kill()
    process.wait()
    assert started == [first.id, second.id] and queue.queued(tmp_path) == []


def test_a_queued_run_can_be_taken_off_the_queue(kernel, tmp_path):
    run = _prepared(kernel, tmp_path, "lora")
    queue.enqueue(run)
    assert queue.dequeue(run) and run.status()["state"] == "cancelled"
    assert queue.start_next(tmp_path) is None


def test_meta_is_kept_beside_the_run_and_delete_refuses_a_live_run(kernel, tmp_path):
    run = _prepared(kernel, tmp_path, "lora")
    manage.update_meta(run, name="first try", tags=["baseline", " baseline", "cpu"])
    manage.update_meta(run, notes="lr from the sweep")
    meta = manage.read_meta(run)
    assert (meta.name, meta.tags, meta.notes) == (
        "first try",
        ["baseline", "cpu"],
        "lr from the sweep",
    )
    assert manage.display_name(run) == "first try"
    process = _sleeper(run)
    try:
        with pytest.raises(RunError, match="still training"):
            manage.delete_run(run)
    finally:
        process.kill()
        process.wait()
    manage.delete_run(run)
    assert not run.path.exists()


def test_filters_match_columns_and_any_tag():
    row = {"dataset": "demo", "technique": "lora", "tags": ["cpu"]}
    assert manage.matches(row, {"dataset": ["demo"], "tags": []})
    assert manage.matches(row, {"tags": ["gpu", "cpu"]})
    assert not manage.matches(row, {"technique": ["ia3"]})


def test_the_adapter_archive_holds_the_adapter_folder(tmp_path):
    run = RunFolder.create(tmp_path, "done")
    run.write_recipe({"name": "done"})
    (run.adapter_dir / "nested").mkdir(parents=True)
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    (run.adapter_dir / "nested" / "w.bin").write_bytes(b"\x00\x01")
    name, data = export.adapter_archive(run)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert name == f"{run.id}-adapter.zip"
    assert sorted(names) == [
        f"{run.id}-adapter/adapter_config.json",
        f"{run.id}-adapter/nested/w.bin",
    ]
    with pytest.raises(RunError):
        export.adapter_archive(RunFolder.create(tmp_path, "unfinished"))


def test_the_classification_report_counts_confusions_and_ranks_confident_errors():
    report = examine.classification_report(
        ["good", "bad", "fine", "awful"],
        [1, 0, 1, 0],
        [[0.2, 0.8], [0.9, 0.1], [0.7, 0.3], [0.05, 0.95]],
        ["neg", "pos"],
    )
    assert report.confusion == [[1, 1], [1, 1]] and report.accuracy == 0.5
    assert [r["text"] for r in report.worst] == ["awful", "fine"]  # most confident first
    assert report.per_class[1] == {
        "label": "pos",
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }


def test_the_generation_report_puts_the_worst_outputs_first():
    report = examine.generation_report(
        ["a", "b"], ["the cat sat", "a dog ran"], ["the cat sat", "nothing alike"]
    )
    assert [r["input"] for r in report.rows] == ["b", "a"]
    assert report.rows[1]["rougeL"] == 1.0 and report.mean_rouge_l == pytest.approx(0.5)


def test_the_runner_keeps_the_bitsandbytes_kernels_warning_out_of_logs(caplog):
    quiet_known_noise()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s", "x")
        logger.warning("something that matters")
    assert [r.getMessage() for r in caplog.records] == ["something that matters"]


def test_the_starter_starts_queued_runs_at_most_n_at_a_time(kernel, tmp_path, monkeypatch):
    started: list[subprocess.Popen] = []

    def fake_start(run: RunFolder, **_kw: object) -> subprocess.Popen:
        started.append(_sleeper(run))
        return started[-1]

    monkeypatch.setattr("engine.process.start_run", fake_start)
    runs = []
    for technique in ("lora", "ia3", "loha"):
        runs.append(_prepared(kernel, tmp_path, technique))
        time.sleep(1.1)  # run ids carry the second
    for run in runs:
        queue.enqueue(run)
    assert [queue.position(tmp_path, r.id) for r in runs] == [1, 2, 3]
    starter = queue.Starter(tmp_path, at_most=2, interval_s=0.1).start()
    try:
        deadline = time.monotonic() + 10
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # time enough to start a third, were it allowed to
        assert [queue.is_live(r) for r in runs] == [True, True, False]
        assert queue.position(tmp_path, runs[2].id) == 1 and runs[2].status()["state"] == "queued"
        started[0].kill()  # the first run ends: the third takes its place
        deadline = time.monotonic() + 10
        while len(started) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.is_live(runs[2]) and queue.position(tmp_path, runs[2].id) is None
    finally:
        starter.stop()
        for process in started:
            process.kill()
            process.wait()
