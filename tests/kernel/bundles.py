"""Builders for small bundle folders used by the kernel tests."""

from __future__ import annotations

from pathlib import Path

import yaml

TECHNIQUE_MODULE = """from sdk import Technique


class Echo(Technique):
    def apply(self, model, ctx):
        return model
"""


def technique_manifest(bundle_id: str = "echo", **overrides: object) -> dict:
    manifest = {
        "id": bundle_id,
        "kind": "technique",
        "name": bundle_id.title(),
        "version": "1.0.0",
        "api": 1,
        "entry": "technique:Echo",
        "summary": "test technique",
        "requires": {"tasks": ["sequence-classification"], "architectures": ["bert"]},
        "params": {"r": {"type": "int", "default": 4, "min": 1, "max": 64}},
    }
    manifest.update(overrides)
    return manifest


def write_bundle(
    root: Path, folder: str, manifest: dict | str, module: str | None = TECHNIQUE_MODULE
) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest, sort_keys=False)
    (path / "plugin.yaml").write_text(text, encoding="utf-8")
    if module is not None:
        (path / "technique.py").write_text(module, encoding="utf-8")
    return path
