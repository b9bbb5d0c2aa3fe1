"""The manifest JSON Schema, generated from the pydantic models in kernel.manifest.

`python -m kernel.schema` rewrites manifests/plugin.schema.json; a test fails when
the committed file differs from what the models generate.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kernel.config import SCHEMA_FILE
from kernel.manifest import Manifest


def manifest_json_schema() -> dict[str, Any]:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://peftlab.dev/schema/plugin.schema.json"
    schema["title"] = "peftlab plugin manifest (plugin.yaml), api 1"
    return schema


def render() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
