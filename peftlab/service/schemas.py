"""Request and response bodies of the HTTP service (they make its OpenAPI schema).

A run request carries a recipe in the same model the CLI reads from YAML
(`kernel.recipe.Recipe`); results come back as results.json has them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kernel.recipe import Recipe


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequest(_Strict):
    """Train a recipe (default: the embedded default), with plugin ids and params overridden."""

    recipe: Recipe | None = None
    dataset: str | None = None
    model: str | None = None
    technique: str | None = None
    trainer: str | None = None
    name: str | None = Field(default=None, max_length=60)
    params: dict[str, Any] = Field(
        default_factory=dict, description="KIND.PARAM -> value, e.g. {'technique.r': 16}."
    )


class CompareRequest(_Strict):
    """Train several techniques on the same recipe, queued one after another."""

    techniques: list[str] = Field(min_length=1, max_length=32)
    recipe: Recipe | None = None
    dataset: str | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class PredictRequest(_Strict):
    texts: list[str] = Field(min_length=1, max_length=256)


class RunSummary(BaseModel):
    id: str
    state: str
    name: str
    dataset: str
    model: str
    technique: str
    queue_position: int | None = None
    error: str | None = None
    results: dict[str, Any] = Field(default_factory=dict)


class DatasetStored(BaseModel):
    name: str
    path: str
    rows: int
    labels: list[str]
    use_with: dict[str, Any] = Field(description="Run request fields that train on this file.")


class ErrorBody(BaseModel):
    error: str
