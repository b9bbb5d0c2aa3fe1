"""docs/api.md's generated part: the Python API from its docstrings, the HTTP routes from the app.

`python -m peftlab.reference --write` rewrites the block between
`<!-- BEGIN GENERATED API -->` and `<!-- END GENERATED API -->`; `--check` exits 1 when
it is stale (a test does the same).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from typing import Any

from kernel.config import PROJECT_ROOT

DOC_FILE = PROJECT_ROOT / "docs" / "api.md"
BEGIN = "<!-- BEGIN GENERATED API -->"
END = "<!-- END GENERATED API -->"


def _entry(name: str, obj: Callable[..., Any] | property) -> list[str]:
    if isinstance(obj, property):
        title, doc = f"`{name}`", inspect.getdoc(obj.fget) or ""
    else:
        signature = str(inspect.signature(obj)).replace("'", "")
        title, doc = f"`{name}{signature}`", inspect.getdoc(obj) or ""
    return [f"#### {title}", "", doc, ""]


def render_python_api() -> str:
    import peftlab
    from peftlab.run import Run

    lines = ["### Functions", ""]
    for name in peftlab.__all__:
        obj = getattr(peftlab, name)
        if inspect.isfunction(obj):
            lines += _entry(f"peftlab.{name}", obj)
    lines += ["### `peftlab.Run`", "", inspect.getdoc(Run) or "", ""]
    for name, member in vars(Run).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property) or inspect.isfunction(member):
            lines += _entry(f"Run.{name}", member)
    return "\n".join(lines)


def render_http_routes() -> str:
    from fastapi.routing import APIRoute

    from peftlab.service.app import ServiceConfig, create_app

    lines = ["### HTTP routes", "", "| method | path | what it does |", "|---|---|---|"]
    for route in create_app(ServiceConfig()).routes:
        if isinstance(route, APIRoute):
            methods = ", ".join(sorted(route.methods or ()))
            what = (route.description or route.name).splitlines()[0]
            lines.append(f"| {methods} | `{route.path}` | {what} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    return f"{render_python_api()}\n{render_http_routes()}"


def updated(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{render()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = DOC_FILE.read_text(encoding="utf-8")
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{DOC_FILE} is out of date; run: python -m peftlab.reference --write")
            return 1
        return 0
    if args.write:
        DOC_FILE.write_text(new, encoding="utf-8")
    else:
        print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
