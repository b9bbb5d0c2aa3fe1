"""Start `peftlab serve` in its own process on a free port, for the service tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.reliability.builders import cli_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(tmp: Path, *args: str, host: str = "127.0.0.1") -> Iterator[str]:
    """The service's base URL while it runs; it is stopped afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "ui.cli", "--no-entry-points", "--runs-dir", str(tmp / "runs")]
    command += ["serve", "--host", host, "--port", str(port), *args]
    log = open(tmp / "service.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=cli_env(tmp))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, tmp)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen, tmp: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((tmp / "service.log").read_text())
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError("the service did not start within 60 s")
