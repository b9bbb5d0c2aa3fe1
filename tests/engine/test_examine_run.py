"""A real (tiny) run examined on its validation split, and the effective values its runner
recorded; trained in this process through the real runner, a few steps of a 2-layer BERT."""

from __future__ import annotations

import json

from engine import effective
from engine.examine import ClassReport, examine_run, validation_split
from kernel import Kernel, KernelConfig
from tests.e2e.test_export import train


def test_a_finished_run_is_examined_on_its_validation_split(tmp_path, tiny_models, tiny_csv_dir):
    kernel = Kernel(
        KernelConfig(use_entry_points=False, use_env_path=False, user_dir=tmp_path / "none")
    )
    kernel.discover()
    run = train(kernel, tmp_path / "runs", tiny_models["bert"], tiny_csv_dir, "lora", "examined")
    recorded = json.loads((run.path / effective.EFFECTIVE_FILE).read_text())
    assert recorded["technique.target_modules"]  # auto, resolved when the process started
    report = examine_run(run, limit=12)
    validation, _section = validation_split(run)
    assert isinstance(report, ClassReport)
    assert report.examples == min(12, len(validation))
    assert sum(map(sum, report.confusion)) == report.examples
    assert sum(c["support"] for c in report.per_class) == report.examples
    wrong = report.examples - sum(report.confusion[i][i] for i in range(len(report.confusion)))
    assert len(report.worst) == min(wrong, 10)
