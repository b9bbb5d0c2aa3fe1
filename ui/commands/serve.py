"""`peftlab serve`: the HTTP service (FastAPI + uvicorn) over the same engine calls."""

from __future__ import annotations

import click

from ui.context import CliState, pass_state


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Runs that train at once; the others wait in the queue.")  # fmt: skip
@click.option("--max-upload-mb", type=click.IntRange(1, 10_000), default=64, show_default=True,
              help="Largest dataset file accepted.")  # fmt: skip
@pass_state
def serve_command(state: CliState, host: str, port: int, workers: int, max_upload_mb: int) -> None:
    """Serve peftlab over HTTP: plugins, uploads, queued runs, progress, predict, download.

    Listening beyond 127.0.0.1 requires a bearer token: it is made on first start,
    stored in peftlab's data folder (mode 0600) and printed here. The OpenAPI schema
    is at /openapi.json, interactive docs at /docs.
    """
    import uvicorn

    from peftlab import session
    from peftlab.service import auth
    from peftlab.service.app import ServiceConfig, create_app

    session.configure(
        plugins_dirs=list(state.plugin_dirs),
        runs_dir=state.runs_dir,
        use_entry_points=state.use_entry_points,
    )
    token = None
    if auth.needs_token(host):
        data_dir = session.kernel().config.data_dir()
        token = auth.load_or_create_token(data_dir)
        click.echo(f"bearer token (from {data_dir / auth.TOKEN_FILE}): {token}")
    config = ServiceConfig(host, workers, max_upload_mb * 2**20, token)
    click.echo(f"peftlab service on http://{host}:{port}  (runs: {session.runs_dir()})")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)
