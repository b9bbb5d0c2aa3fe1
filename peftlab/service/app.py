"""The HTTP service: plugins, graph, uploads, runs (queued), progress, results, predict,
download, cancel, delete. Every error is a 4xx (or 500) with a one-line reason.

Runs wait in the runs folder's queue (engine.queue), the one the app uses: a run queued
here shows in the app and the other way round, and the queue outlives a restart.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import queue
from kernel.errors import PeftlabError
from kernel.runs import TERMINAL_STATES, RunFolder
from peftlab import api, session
from peftlab.run import Run
from peftlab.service import auth
from peftlab.service.schemas import (
    CompareRequest,
    DatasetStored,
    ErrorBody,
    PredictRequest,
    RunRequest,
    RunSummary,
)

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
EVENT_INTERVAL_S = 0.5


@dataclass
class ServiceConfig:
    host: str = "127.0.0.1"
    workers: int = 1
    max_upload_bytes: int = 64 * 2**20
    token: str | None = None


def create_app(config: ServiceConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # runs queued before this start (by the app, or a service that stopped) start too
        app.state.starter = queue.Starter(session.runs_dir(), config.workers).start()
        try:
            yield
        finally:
            app.state.starter.stop()

    app = FastAPI(
        title="peftlab",
        description=__doc__,
        responses={400: {"model": ErrorBody}},
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.predictors = {}
    app.state.predict_lock = threading.Lock()
    _errors(app)
    guard = [Depends(_authorised)]
    _plugin_routes(app, guard)
    _run_routes(app, guard)
    _result_routes(app, guard)
    return app


def _authorised(request: Request) -> None:
    token = request.app.state.config.token
    if token and not auth.token_matches(request.headers.get("authorization"), token):
        raise HTTPException(401, "missing or wrong bearer token")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(PeftlabError)
    def peftlab_error(_request: Request, exc: PeftlabError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)  # fastapi's and the router's own 404s
    def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def find_run(run_id: str) -> RunFolder:
    """A run of the service's runs folder by its exact id; never a path."""
    if not RUN_ID.match(run_id) or ".." in run_id:
        raise HTTPException(404, f"no run '{run_id}'")
    folder = session.runs_dir() / run_id
    if not (folder / "recipe.yaml").is_file():
        raise HTTPException(404, f"no run '{run_id}'")
    return RunFolder(folder)


def summary(run: RunFolder) -> RunSummary:
    record = run.record()
    place = queue.position(run.path.parent, run.id)
    status = run.status()
    return RunSummary(
        id=run.id,
        state=str(status.get("state", "pending")),
        name=record.name,
        dataset=record.dataset.id,
        model=record.model.id,
        technique=record.technique.id,
        queue_position=None if place is None else place - 1,  # 0 = next to start
        error=status.get("error"),
        results=run.results() or {},
    )


def _plugin_routes(app: FastAPI, guard: list[Any]) -> None:
    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness check (no token needed)."""
        return {"status": "ok"}

    @app.get("/plugins", dependencies=guard)
    def plugins(kind: str | None = None) -> list[dict[str, Any]]:
        """Every loaded bundle (of one kind with ?kind=technique|model|dataset|trainer)."""
        return [
            {k: str(v) if isinstance(v, Path) else v for k, v in vars(p).items()}
            for p in api.plugins(kind)
        ]

    @app.get("/graph", dependencies=guard)
    def graph() -> dict[str, Any]:
        """The capability graph: nodes, and edges with the reasons a pair does not fit."""
        return api.graph().to_json()

    @app.post("/datasets", dependencies=guard, status_code=201)
    def upload(
        request: Request,
        file: UploadFile = File(...),
        text_column: str = Form("text"),
        label_column: str = Form("label"),
    ) -> DatasetStored:
        """Upload a labelled CSV / JSONL file (validated, size-limited, stored under a safe name)."""
        from engine.uploads import store_dataset

        limit = request.app.state.config.max_upload_bytes
        data = file.file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload larger than {limit // 2**20} MB")
        folder = session.kernel().config.data_dir() / "datasets"
        stored = store_dataset(
            data,
            file.filename or "upload.csv",
            folder,
            text_column=text_column,
            label_column=label_column,
        )
        params = {
            "dataset.path": str(stored.path),
            "dataset.text_column": text_column,
            "dataset.label_column": label_column,
        }
        return DatasetStored(
            name=stored.path.name,
            path=str(stored.path),
            rows=stored.rows,
            labels=stored.labels,
            use_with={"dataset": "csv", "params": params},
        )


def _run_routes(app: FastAPI, guard: list[Any]) -> None:
    def queued(run: RunFolder) -> RunSummary:
        queue.enqueue(run)
        app.state.starter.poke()
        return summary(run)

    @app.get("/runs", dependencies=guard)
    def list_runs() -> list[RunSummary]:
        """Every run with its state, queue position and results."""
        return [summary(r.folder) for r in api.runs()]

    @app.post("/runs", dependencies=guard, status_code=202)
    def start(body: RunRequest) -> RunSummary:
        """Queue a training run (validated before its folder is made)."""
        ids = {k: getattr(body, k) for k in ("dataset", "model", "technique", "trainer")}
        return queued(api.prepare(body.recipe, ids=ids, name=body.name, params=body.params))

    @app.post("/comparisons", dependencies=guard, status_code=202)
    def compare(body: CompareRequest) -> list[RunSummary]:
        """Queue one run per technique on the same recipe."""
        folders = api.prepare_each(
            body.techniques, body.recipe, dataset=body.dataset, model=body.model, params=body.params
        )  # every technique is checked before any run folder is made or queued
        return [queued(run) for run in folders]

    @app.get("/runs/{run_id}", dependencies=guard)
    def show(run_id: str) -> RunSummary:
        """One run's state, queue position and results."""
        return summary(find_run(run_id))

    @app.post("/runs/{run_id}/cancel", dependencies=guard)
    def cancel(run_id: str) -> RunSummary:
        """Stop a run (or take it off the queue); it can be resumed later."""
        from engine.process import stop_run

        run = find_run(run_id)
        if queue.dequeue(run):
            run.set_status("interrupted", finished=time.time(), stopped_by="user")
        else:
            stop_run(run)
        return summary(run)

    @app.delete("/runs/{run_id}", dependencies=guard)
    def delete(run_id: str) -> dict[str, str]:
        """Delete a run folder (not while it trains)."""
        run = find_run(run_id)
        queue.dequeue(run)
        if queue.is_live(run):
            raise HTTPException(409, "the run is training; cancel it first")
        app.state.predictors.pop(run_id, None)
        shutil.rmtree(run.path)
        return {"deleted": run_id}


def _result_routes(app: FastAPI, guard: list[Any]) -> None:
    @app.get("/runs/{run_id}/progress", dependencies=guard)
    def progress(run_id: str) -> dict[str, Any]:
        """The run's state, step, total steps, phase and ETA (poll this)."""
        run = find_run(run_id)
        return {"state": run.status().get("state", "pending"), **run.progress()}

    @app.get("/runs/{run_id}/events", dependencies=guard)
    def events(run_id: str) -> StreamingResponse:
        """The same progress as server-sent events, until the run ends."""
        run = find_run(run_id)
        return StreamingResponse(_progress_events(run), media_type="text/event-stream")

    @app.get("/runs/{run_id}/metrics", dependencies=guard)
    def metrics(run_id: str) -> list[dict[str, Any]]:
        """Every logged step (metrics.jsonl)."""
        return find_run(run_id).metrics()

    @app.get("/runs/{run_id}/results", dependencies=guard)
    def results(run_id: str) -> dict[str, Any]:
        """results.json of a finished run (409 before)."""
        run = find_run(run_id)
        found = run.results()
        if found is None:
            raise HTTPException(409, f"run is {run.status().get('state')}; no results yet")
        return found

    @app.post("/runs/{run_id}/predict", dependencies=guard)
    def predict(run_id: str, body: PredictRequest) -> dict[str, Any]:
        """Classify texts (or continue them, for a generation run) with a finished run."""
        run = find_run(run_id)
        with app.state.predict_lock:  # one model load at a time; torch uses every core
            handle = app.state.predictors.get(run_id) or Run(run)
            app.state.predictors[run_id] = handle
            outputs = handle.predict(body.texts)
        return {"outputs": [o if isinstance(o, str) else vars(o) for o in outputs]}

    @app.get("/runs/{run_id}/adapter.zip", dependencies=guard)
    def download(run_id: str) -> FileResponse:
        """The run's adapter folder as a zip archive."""
        from engine.adapters import archive_adapter

        run = find_run(run_id)
        scratch = Path(tempfile.mkdtemp(prefix="peftlab-download-"))
        archive = archive_adapter(run, scratch / f"{run.id}-adapter.zip")
        cleanup = BackgroundTask(shutil.rmtree, scratch, ignore_errors=True)
        return FileResponse(archive, filename=archive.name, background=cleanup)


def _progress_events(run: RunFolder) -> Iterator[str]:
    """Server-sent events: the run's progress each half second until it ends."""
    last = None
    while True:
        state = run.status().get("state", "pending")
        event = json.dumps({"state": state, **run.progress()}, default=str)
        if event != last:
            yield f"data: {event}\n\n"
            last = event
        if state in (*TERMINAL_STATES, "interrupted"):
            return
        time.sleep(EVENT_INTERVAL_S)
