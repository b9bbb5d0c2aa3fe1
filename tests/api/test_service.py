"""`peftlab serve` over real HTTP: the whole flow, auth, and bad requests."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.service import running_service
from tests.reliability.builders import tiny_recipe

FAST = {"trainer.max_steps": 2, "trainer.logging_steps": 1, "trainer.measure_baseline": False}


def wait_done(url: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = requests.get(f"{url}/runs/{run_id}/progress", timeout=10).json()
        if progress["state"] in ("completed", "failed", "interrupted"):
            return progress
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish")


def test_upload_train_follow_predict_download_delete(
    tmp_path: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    with running_service(tmp_path) as url:
        upload = requests.post(
            f"{url}/datasets",
            files={"file": ("../../my reviews.csv", (tiny_csv_dir / "train.csv").read_bytes())},
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        stored = upload.json()
        assert stored["name"] == "my-reviews.csv" and stored["labels"] == ["0", "1"]
        assert Path(stored["path"]).parent == tmp_path / "home" / "data" / "datasets"
        recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir).model_dump()
        body = {"recipe": recipe, "params": {**FAST, **stored["use_with"]["params"]}}
        body["dataset"] = stored["use_with"]["dataset"]
        started = requests.post(f"{url}/runs", json=body, timeout=60)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        assert wait_done(url, run_id)["state"] == "completed"
        results = requests.get(f"{url}/runs/{run_id}/results", timeout=10).json()
        assert 0.0 <= results["accuracy"] <= 1.0
        metrics = requests.get(f"{url}/runs/{run_id}/metrics", timeout=10).json()
        assert any("loss" in row for row in metrics)
        predicted = requests.post(
            f"{url}/runs/{run_id}/predict", json={"texts": ["a lovely film"]}, timeout=120
        )
        assert predicted.status_code == 200, predicted.text
        (output,) = predicted.json()["outputs"]
        assert abs(sum(output["probabilities"].values()) - 1.0) < 1e-5
        archive = requests.get(f"{url}/runs/{run_id}/adapter.zip", timeout=30)
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert "adapter_config.json" in names
        assert requests.delete(f"{url}/runs/{run_id}", timeout=10).status_code == 200
        assert requests.get(f"{url}/runs/{run_id}", timeout=10).status_code == 404


def test_bad_requests_get_a_one_line_reason(tmp_path: Path, tiny_csv_dir: Path) -> None:
    with running_service(tmp_path, "--max-upload-mb", "1") as url:
        cases = [
            requests.post(f"{url}/runs", json={"technique": "nope"}, timeout=30),
            requests.post(f"{url}/runs", json={"params": {"technique.r": "many"}}, timeout=30),
            requests.post(f"{url}/runs", json={"unknown_field": 1}, timeout=30),
            requests.post(
                f"{url}/runs",
                data=b"{not json",
                timeout=30,
                headers={"content-type": "application/json"},
            ),
            requests.get(f"{url}/runs/no-such-run", timeout=10),
            requests.get(f"{url}/runs/..%2F..%2Fetc", timeout=10),
            requests.post(
                f"{url}/datasets", files={"file": ("big.csv", b"x" * (2**20 + 10))}, timeout=30
            ),
            requests.post(f"{url}/datasets", files={"file": ("t.csv", b"a,b\n1,2\n")}, timeout=30),
            # lora alone would pass: the comparison is refused before its folder is made
            requests.post(f"{url}/comparisons", json={"techniques": ["lora", "nope"]}, timeout=60),
        ]
        codes = [r.status_code for r in cases]
        assert codes == [400, 400, 422, 422, 404, 404, 413, 400, 400]
        for response in cases:
            error = response.json()["error"]
            assert error and "\n" not in error and "Traceback" not in error
        assert "nope" in cases[0].json()["error"]
        assert "no text column" in cases[7].json()["error"]
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_token_is_required_beyond_loopback(tmp_path: Path) -> None:
    with running_service(tmp_path, host="0.0.0.0") as url:
        token_file = tmp_path / "home" / "data" / "service-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert requests.get(f"{url}/plugins", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{url}/plugins", headers=wrong, timeout=10).status_code == 401
        right = {"Authorization": f"Bearer {token}"}
        listed = requests.get(f"{url}/plugins", headers=right, timeout=10)
        assert listed.status_code == 200 and any(p["id"] == "lora" for p in listed.json())


def test_runs_wait_in_the_apps_queue_and_outlive_a_service_restart(
    tmp_path: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    import psutil

    from engine import queue
    from engine.prepare import prepare_checked
    from tests.reliability.builders import kernel_for

    runs_dir = tmp_path / "runs"
    recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir)
    training = prepare_checked(recipe, kernel_for(), runs_dir)
    # a run "training" in this process: nothing else may start while it lives
    training.set_status("running", pid=os.getpid(), pid_started=psutil.Process().create_time())
    body = {"recipe": recipe.model_dump(), "params": FAST}
    with running_service(tmp_path) as url:
        sent = requests.post(f"{url}/runs", json=body, timeout=60).json()
        assert (sent["state"], sent["queue_position"]) == ("queued", 0)
        assert [r.id for r in queue.queued(runs_dir)] == [sent["id"]]  # the app's queue
        from_app = prepare_checked(
            recipe.model_copy(update={"name": "app"}), kernel_for(), runs_dir
        )
        queue.enqueue(from_app)
        listed = {r["id"]: r for r in requests.get(f"{url}/runs", timeout=10).json()}
        assert listed[from_app.id]["queue_position"] == 1
        assert listed[training.id]["state"] == "running"
    with running_service(tmp_path) as url:  # a new service process: the queue is still there
        again = requests.get(f"{url}/runs/{sent['id']}", timeout=10).json()
        assert (again["state"], again["queue_position"]) == ("queued", 0)
        training.set_status("completed")
        assert wait_done(url, sent["id"])["state"] == "completed"
        assert wait_done(url, from_app.id)["state"] == "completed"
        assert queue.queued(runs_dir) == []


@pytest.mark.slow
def test_fifty_clients_polling_while_a_run_trains(
    tmp_path: Path, tiny_models: dict[str, Path], tiny_csv_dir: Path
) -> None:
    from tests.api.load import poll_for

    with running_service(tmp_path) as url:
        recipe = tiny_recipe(tiny_models["bert"], tiny_csv_dir).model_dump()
        params = {"trainer.max_steps": 300, "trainer.logging_steps": 5}
        run_id = requests.post(
            f"{url}/runs", json={"recipe": recipe, "params": params}, timeout=60
        ).json()["id"]
        stats = poll_for(url, run_id, clients=50, seconds=60)
        assert stats.errors == 0, stats
        print(f"\n{stats.requests} requests, p95 {stats.p95_ms:.0f} ms, max {stats.max_ms:.0f} ms")
        assert wait_done(url, run_id, timeout=600)["state"] == "completed"
        results = requests.get(f"{url}/runs/{run_id}/results", timeout=10).json()
        assert results["global_step"] == 300
