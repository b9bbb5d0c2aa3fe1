"""`peftlab ui`: start the Streamlit app (ui/app.py) on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from ui.context import CliState, pass_state

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"
# read by ui/views/_shared.py
NO_ENTRY_POINTS_ENV = "PEFTLAB_NO_ENTRY_POINTS"
PLUGIN_DIRS_ENV = "PEFTLAB_UI_PLUGIN_DIRS"


def streamlit_command(state: CliState, host: str, port: int) -> list[str]:
    """The `streamlit run` command line; plugin folders are kept out of Streamlit's own
    file watcher, since the kernel's hot reload watches them."""
    from kernel import KernelConfig

    config = KernelConfig(plugin_dirs=list(state.plugin_dirs))
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    for folder, _origin, _priority in config.folder_sources():
        command += ["--server.folderWatchBlacklist", str(Path(folder).expanduser().resolve())]
    return command


def app_environment(state: CliState) -> dict[str, str]:
    """The app reads its configuration from the environment, like the kernel does."""
    env = dict(os.environ)
    if state.plugin_dirs:  # --plugins-dir keeps its priority over PEFTLAB_PLUGIN_PATH
        env[PLUGIN_DIRS_ENV] = os.pathsep.join(
            str(Path(p).expanduser().resolve()) for p in state.plugin_dirs
        )
    if state.runs_dir is not None:
        env["PEFTLAB_RUNS_DIR"] = str(Path(state.runs_dir).expanduser().resolve())
    if not state.use_entry_points:
        env[NO_ENTRY_POINTS_ENV] = "1"
    return env


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 makes the app reachable from other machines.",
)
@pass_state
def ui_command(state: CliState, port: int, host: str) -> None:
    """Open the web app: train, compare runs, try models, browse plugins."""
    command = streamlit_command(state, host, port)
    click.echo(f"peftlab ui on http://{host}:{port}  (Ctrl-C stops it)")
    process = subprocess.Popen(command, env=app_environment(state))

    def forward(signum: int, _frame: object) -> None:  # stopping this command stops the app
        process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        code = process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached both; give Streamlit a moment to shut down
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    raise SystemExit(0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code)


def register(cli: click.Group) -> None:
    cli.add_command(ui_command)
