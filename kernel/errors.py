"""The kernel's own exception types.

Every error names the bundle (its folder or manifest file) and, where one is at
fault, the field, so the CLI and UI can point a person at the line to fix.
"""

from __future__ import annotations

from pathlib import Path


class PeftlabError(Exception):
    """Base class: every error the kernel raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.field = field
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]" if where else f"[{self.field}]"
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "path": self.path,
            "field": self.field,
            "line": self.line,
        }


class ManifestError(PeftlabError):
    """A plugin.yaml that cannot be read, parsed or validated."""


class PluginLoadError(PeftlabError):
    """A bundle whose Python module cannot be imported or whose entry is wrong."""


class MissingDependencyError(PluginLoadError):
    """A bundle imports a package that is not installed."""

    def __init__(self, package: str, **kwargs: object) -> None:
        self.package = package
        super().__init__(
            f"missing dependency: package '{package}' is not installed (pip install {package})",
            **kwargs,  # type: ignore[arg-type]
        )


class UnknownPluginError(PeftlabError):
    """A recipe or command names a plugin id that no bundle provides."""


class ParamError(PeftlabError):
    """A parameter value that does not fit its declaration."""


class RecipeError(PeftlabError):
    """A recipe that cannot be resolved into a runnable set of plugins."""


class IncompatibleError(RecipeError):
    """The chosen plugins do not work together (the capability graph says why)."""


class DatasetError(PeftlabError):
    """Data that cannot be turned into a labelled split."""


class RunError(PeftlabError):
    """A run folder that is missing, incomplete or cannot be resumed."""
