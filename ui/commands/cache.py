"""`peftlab cache`: what the data caches (Arrow copies of data files, tokenized splits) hold, and clearing them."""

from __future__ import annotations

import json

import click

CACHE_PARTS = ("datasets", "tokenized")


@click.group("cache")
def cache_group() -> None:
    """Show or clear the data caches (read files as Arrow, tokenized splits)."""


@cache_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_cache(as_json: bool) -> None:
    """Where the caches are and how much they hold."""
    from sdk.data.cache import cache_root, cache_usage

    usage = cache_usage()
    if as_json:
        rows = [
            {"part": u.part, "path": str(u.path), "files": u.files, "bytes": u.bytes} for u in usage
        ]
        click.echo(json.dumps({"root": str(cache_root()), "parts": rows}, indent=2))
        return
    click.echo(f"cache: {cache_root()}")
    for item in usage:
        click.echo(
            f"  {item.part:<10} {item.files:>6} file(s)  {_size(item.bytes):>10}  {item.path}"
        )
    click.echo(
        f"  {'total':<10} {sum(u.files for u in usage):>6} file(s)  {_size(sum(u.bytes for u in usage)):>10}"
    )


@cache_group.command("clear")
@click.option(
    "--part",
    type=click.Choice(CACHE_PARTS),
    multiple=True,
    help="Only this part (repeatable); default: all of them.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear_cache_command(part: tuple[str, ...], yes: bool) -> None:
    """Delete cached data; it is rebuilt from the data files when next needed."""
    from sdk.data.cache import cache_root, clear_cache

    parts = part or CACHE_PARTS
    if not yes:
        click.confirm(f"Delete the {', '.join(parts)} cache(s) under {cache_root()}?", abort=True)
    freed = clear_cache(tuple(parts))
    click.echo(f"cleared {', '.join(parts)}: {_size(freed)} freed")


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} B"


def register(cli: click.Group) -> None:
    cli.add_command(cache_group)
