"""Entry point of a training process: `python -m kernel.runner RUN_DIR [--resume]`.

It receives data, not objects: the run's recipe.yaml names each bundle's folder
and content hash. The process loads those bundles itself, builds the SDK
contexts, hands them to the trainer plugin and records the outcome. Under
torchrun every rank runs this; only rank 0 writes the run's files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from kernel.discovery import BundleLocation
from kernel.errors import PeftlabError, PluginLoadError
from kernel.recipe import RECIPE_KINDS
from kernel.registry import read_bundle
from kernel.runs import RunFolder


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class FolderReporter:
    """The SDK Reporter, writing to the run folder (rank 0 only)."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.enabled = is_main_process()

    def log_metrics(self, record: dict[str, Any]) -> None:
        if self.enabled:
            self.run.log_metrics(record)

    def set_progress(self, **fields: Any) -> None:
        if self.enabled:
            self.run.set_progress(**fields)


def load_plugin(kind: str, record: dict[str, Any], run_dir: Path | None = None) -> Any:
    """Load the exact bundle version a recipe names and wrap it in a PluginHandle.

    The run folder's snapshot of the bundle is preferred: it is the version the run
    was started with, whatever happened to the plugin folder since.
    """
    original = folder = Path(record["path"])
    if run_dir is not None and record.get("snapshot") and (run_dir / record["snapshot"]).is_dir():
        folder = run_dir / record["snapshot"]
    try:
        return _load_handle(kind, record, folder)
    except PeftlabError as exc:
        # errors name the plugin folder a person edits, not the run's copy of it
        if exc.path and folder != original and exc.path.startswith(str(folder)):
            exc.path = str(original) + exc.path[len(str(folder)) :]
            exc.args = (exc.render(),)
        raise


def _load_handle(kind: str, record: dict[str, Any], folder: Path) -> Any:
    from sdk.base import BASE_CLASSES
    from sdk.context import PluginHandle

    bundle = read_bundle(BundleLocation(folder, record.get("origin", "path"), 0))
    if bundle.manifest.kind != kind:
        raise PluginLoadError(f"expected a {kind} bundle", path=folder, field="kind")
    if record.get("content_hash") and record["content_hash"] != bundle.content_hash:
        print(
            f"note: {kind} '{bundle.manifest.id}' changed since the run was created; "
            "using the version on disk now",
            file=sys.stderr,
        )
    instance = bundle.instantiate()
    base = BASE_CLASSES[kind]
    if not isinstance(instance, base):
        raise PluginLoadError(
            f"entry '{bundle.manifest.entry}' is {type(instance).__name__}, "
            f"not a subclass of sdk.{base.__name__}",
            path=folder / "plugin.yaml",
            field="entry",
        )
    manifest = bundle.manifest.model_dump(mode="json")
    return PluginHandle(bundle.manifest.id, instance, record.get("params", {}), folder, manifest)


def execute(run: RunFolder, resume: bool = False) -> dict[str, Any]:
    """Run the trainer plugin for a prepared run folder and return its results."""
    from sdk.context import RunContext

    record = run.recipe()
    handles = {kind: load_plugin(kind, record[kind], run.path) for kind in RECIPE_KINDS}
    resume_from = run.latest_checkpoint() if resume else None
    ctx = RunContext(
        run_dir=run.path,
        reporter=FolderReporter(run),
        resume_from=resume_from,
        recipe=record,
        **handles,
    )
    return handles["trainer"].instance.run(ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one prepared peftlab run folder.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir)
    main_process = is_main_process()
    if main_process:
        run.set_status("running", pid=os.getpid(), started=time.time(), resumed=args.resume)
    try:
        results = execute(run, resume=args.resume)
    except BaseException as exc:  # record every failure, including KeyboardInterrupt
        if main_process:
            info = exc.as_dict() if isinstance(exc, PeftlabError) else {"message": str(exc)}
            run.set_status(
                "failed",
                finished=time.time(),
                error=f"{type(exc).__name__}: {exc}",
                error_detail=info,
                traceback=traceback.format_exc(),
            )
        traceback.print_exc()
        return 1
    if main_process:
        run.write_results(results)
        run.set_status("completed", finished=time.time())
    _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Under torchrun / accelerate launch: wait until rank 0 has written the run's files, then
    close the process group (torch warns about a group left open at exit)."""
    torch = sys.modules.get("torch")  # the kernel does not import torch itself
    if torch is None:
        return
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
