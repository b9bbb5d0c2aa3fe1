"""First imports of untrusted bundle code in a child process with a time limit.

Importing a bundle runs its code. Code that calls `os._exit()`, sleeps for a minute
or raises KeyboardInterrupt at import would take down (or stall) a long-lived
process: the UI server, `plugins watch`, `plugins validate`. So such a process first
imports the bundle in a throwaway child (`python -m kernel.trialimport FOLDER`);
only a bundle whose trial import finished cleanly is imported in-process. Whatever
went wrong comes back as a PluginLoadError naming the bundle and the reason.

This is a guard against crashes and hangs, not a sandbox: code that imports cleanly
runs with the user's rights once it is used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kernel.errors import PeftlabError, PluginLoadError

#: seconds a trial import may take (importing torch and transformers fits well within it)
TRIAL_TIMEOUT_S = float(os.environ.get("PEFTLAB_IMPORT_TIMEOUT_S") or 30)
RESULT_MARK = "PEFTLAB-TRIAL-RESULT "
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_guard_users = 0
_guard_lock = threading.Lock()


def guard_imports(on: bool) -> None:
    """Long-lived processes (the UI, `plugins watch`) switch trial imports on while they run."""
    global _guard_users
    with _guard_lock:
        _guard_users = max(0, _guard_users + (1 if on else -1))


def imports_guarded() -> bool:
    return _guard_users > 0


def trial_import(
    folder: Path, timeout: float | None = None, *, entry: tuple[str, str, str] | None = None
) -> PluginLoadError | None:
    """Import the bundle in `folder` in a child process; None when that went cleanly.

    `entry` is (kind, id, "module:attribute") when the caller has it (validate does, even
    for a manifest with other problems); otherwise the child reads plugin.yaml."""
    folder = Path(folder).resolve()
    manifest_path = folder / "plugin.yaml"
    limit = TRIAL_TIMEOUT_S if timeout is None else timeout
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "kernel.trialimport", str(folder), *(entry or ())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(folder),
        text=True,
        errors="replace",
        start_new_session=True,  # its whole group can be stopped; our terminal's signals skip it
    )
    try:
        out, _ = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        return PluginLoadError(
            f"importing the bundle did not finish within {limit:g} s (it hangs at import)",
            path=manifest_path,
        )
    return _outcome(out, child.returncode, manifest_path)


def _kill_group(child: subprocess.Popen[str]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the child leads its own session
    except (ProcessLookupError, PermissionError):
        child.kill()
    child.communicate()


def _outcome(out: str, returncode: int, manifest_path: Path) -> PluginLoadError | None:
    lines = [line for line in out.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        how = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        return PluginLoadError(
            f"importing the bundle ended the process ({how}) before it finished",
            path=manifest_path,
        )
    result = json.loads(lines[-1][len(RESULT_MARK) :])
    if result.get("ok"):
        return None
    return PluginLoadError(
        str(result.get("message") or "import failed"),
        path=result.get("path") or manifest_path,
        field=result.get("field"),
        line=result.get("line"),
    )


def _report(result: dict[str, object]) -> None:
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """The child: import the bundle's entry once and report how it went on stdout."""
    from kernel.loader import content_hash, import_entry
    from kernel.manifest import Manifest, load_manifest

    folder = Path(argv[0])
    try:
        if len(argv) == 4:  # kind, id and entry given: the rest of the manifest may be broken
            manifest = Manifest.model_construct(kind=argv[1], id=argv[2], entry=argv[3])
        else:
            manifest = load_manifest(folder / "plugin.yaml")
        import_entry(manifest, folder, content_hash(folder))
    except PeftlabError as exc:
        _report({"ok": False, **exc.as_dict()})
        return 0
    except BaseException as exc:  # KeyboardInterrupt and the like: still a broken bundle
        _report({"ok": False, "message": f"import raised {type(exc).__name__}: {exc}"})
        return 0
    _report({"ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
