"""Manifest models: parse and validate a bundle's plugin.yaml without importing it.

The pydantic models here are the single source of truth for the manifest
format: the JSON Schema in manifests/ and the reference in docs/sdk.md are
generated from them (see kernel.schema).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernel import manifest_cache
from kernel.errors import ManifestError
from kernel.yamlio import load_yaml as bounded_yaml
from kernel.yamlio import parse_bounded

MANIFEST_FILE = "plugin.yaml"
API_VERSION = 1
KINDS = ("technique", "model", "dataset", "trainer")
TASKS = ("sequence-classification", "causal-lm", "seq2seq")
LAYER_KINDS = ("linear", "conv1d", "embedding", "layernorm")
PARAM_TYPES = ("int", "float", "bool", "str", "choice", "multiselect", "path")

Kind = Literal["technique", "model", "dataset", "trainer"]
Task = Literal["sequence-classification", "causal-lm", "seq2seq"]
LayerKind = Literal["linear", "conv1d", "embedding", "layernorm"]
ParamType = Literal["int", "float", "bool", "str", "choice", "multiselect", "path"]

_ID_RE = re.compile(r"^[a-z0-9_-]+$")
_ENTRY_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Strict):
    """One user-settable parameter; the UI builds its widget from this."""

    type: ParamType = Field(description="Value type; decides validation and the widget.")
    default: Any = Field(
        default=None,
        description="Value used when the recipe does not set one. `auto` is allowed for "
        "multiselect params with options_from.",
    )
    min: float | None = Field(default=None, description="Lowest allowed value (int/float).")
    max: float | None = Field(default=None, description="Highest allowed value (int/float).")
    options: list[str | int | float] | None = Field(
        default=None, description="Allowed values of a choice, or suggestions of a multiselect."
    )
    options_from: str | None = Field(
        default=None,
        description="Take options from the chosen model's manifest, e.g. "
        "`model.attention_modules`.",
    )
    help: str = Field(default="", description="One sentence shown next to the widget.")
    label: str | None = Field(default=None, description="Widget label; the param name if unset.")
    advanced: bool = Field(default=False, description="Show inside the 'advanced' expander.")
    depends_on: dict[str, Any] | None = Field(
        default=None,
        description="Show (and validate) only when these other params have these values.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> ParamSpec:
        if self.type == "choice" and not self.options:
            raise ValueError("a choice param needs `options`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.options_from is not None and not re.match(r"^model\.[a-z_]+$", self.options_from):
            raise ValueError("options_from must look like `model.<field>`")
        return self


class Exclusion(_Strict):
    """One architecture a bundle cannot work with, and why (shown verbatim in the graph)."""

    architecture: str = Field(description="Model family (`model_type`), e.g. gpt2.")
    reason: str = Field(min_length=1, description="One sentence: why it does not work.")


class Requirements(_Strict):
    """What a bundle needs from the plugins it is combined with, in terms of model facts."""

    tasks: list[Task] = Field(default_factory=list, description="Tasks it supports; empty = any.")
    layers: list[LayerKind] = Field(
        default_factory=list,
        description="Kinds of layers it adds weights to or wraps (linear, conv1d, embedding, "
        "layernorm); the model must have at least one of them. Empty = no layer requirement.",
    )
    excludes: list[Exclusion] = Field(
        default_factory=list,
        description="Architectures it cannot work with, each with the reason shown to users.",
    )
    architectures: list[str] = Field(
        default_factory=list,
        description="Legacy allow-list of model architectures (empty = any); still honoured, "
        "but state `layers` and `excludes` instead so new models fit without edits.",
    )
    packages: list[str] = Field(
        default_factory=list,
        description="pip requirements, e.g. `peft>=0.13`. A bundle that quantizes with "
        "bitsandbytes lists it here (or requires `quantizable`): a training process whose "
        "bundles do neither leaves bitsandbytes unloaded.",
    )
    provides: list[str] = Field(
        default_factory=list,
        description="Capabilities the chosen model must provide, e.g. `quantizable`.",
    )


class WeightsSource(_Strict):
    """Where a model's weights come from by default (a param can override it)."""

    package: str | None = Field(
        default=None, description="Installed Python package that ships the weights."
    )
    subdir: str = Field(default="", description="Folder inside that package.")
    hub_id: str | None = Field(default=None, description="Hugging Face hub id.")


class ModelFacts(_Strict):
    """Facts a model bundle declares so the graph and techniques can use them unimported."""

    architecture: str = Field(
        description="Model family (transformers' `model_type`), e.g. bert, llama, gpt2, t5; "
        "`auto` when the bundle derives its facts from the chosen model's config."
    )
    tasks: list[Task] = Field(min_length=1, description="Tasks the model can be built for.")
    layer_kinds: list[LayerKind] = Field(
        default_factory=lambda: list[LayerKind](["linear"]),
        description="Kinds of the model's adaptable layers (linear, conv1d, embedding, "
        "layernorm); techniques state which kinds they adapt.",
    )
    derived: bool = Field(
        default=False,
        description="The bundle derives its real facts from the chosen model's config.json "
        "when a model is chosen; the values here are what the graph assumes until then.",
    )
    attention_modules: list[str] = Field(
        default_factory=list, description="Names of attention projection modules."
    )
    feedforward_modules: list[str] = Field(
        default_factory=list, description="Names of feed-forward modules (used by IA3)."
    )
    default_target_modules: list[str] = Field(
        default_factory=list, description="What `auto` target modules resolves to."
    )
    classifier_modules: list[str] = Field(
        default_factory=list,
        description="Task-head modules that are newly initialised and must train/save.",
    )
    weights: WeightsSource = Field(default_factory=WeightsSource)
    num_parameters: int | None = Field(default=None, description="Parameter count, informative.")


class DatasetFacts(_Strict):
    """Facts a dataset bundle declares."""

    task: Task = Field(description="What the data is for; decides the columns load() returns.")
    label_names: list[str] = Field(
        default_factory=list, description="Class names; empty = inferred from the data."
    )
    splits: list[str] = Field(
        default_factory=lambda: ["train", "validation"], description="Splits the data comes in."
    )
    text_fields: list[str] = Field(
        default_factory=lambda: ["text"], description="Columns of the raw data holding the input."
    )
    label_field: str = Field(
        default="label", description="Column of the raw data holding the label."
    )
    source: str = Field(default="", description="Where the data comes from, in words.")


class Manifest(_Strict):
    """A bundle's plugin.yaml."""

    id: str = Field(description="Unique within its kind; lowercase letters, digits, - and _.")
    kind: Kind = Field(description="What the bundle is: technique, model, dataset or trainer.")
    name: str = Field(min_length=1, description="Human-readable name.")
    version: str = Field(description="The bundle's own version, e.g. 1.0.0.")
    api: int = Field(description=f"SDK API version the bundle targets (current: {API_VERSION}).")
    entry: str = Field(description="module:attribute inside the bundle folder.")
    summary: str = Field(default="", description="One line shown in lists.")
    description: str = Field(default="", description="Longer text for the plugin page.")
    paper: str | None = Field(default=None, description="Link to the method's paper.")
    requires: Requirements = Field(default_factory=Requirements)
    provides: list[str] = Field(default_factory=list, description="Capability tags it offers.")
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    model: ModelFacts | None = Field(default=None, description="Required when kind is model.")
    dataset: DatasetFacts | None = Field(default=None, description="Required when kind is dataset.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"'{value}' must match [a-z0-9_-]+")
        return value

    @field_validator("api")
    @classmethod
    def _check_api(cls, value: int) -> int:
        if value != API_VERSION:
            raise ValueError(f"api {value} is not supported; this peftlab speaks api {API_VERSION}")
        return value

    @field_validator("entry")
    @classmethod
    def _check_entry(cls, value: str) -> str:
        module = value.split(":", 1)[0]
        if "/" in module or "\\" in module or module.startswith("."):
            raise ValueError(f"'{value}' points outside the bundle folder")
        if not _ENTRY_RE.match(value):
            raise ValueError(
                f"'{value}' must be module:attribute with a module inside the bundle "
                "(no paths, no '..')"
            )
        return value

    @field_validator("params")
    @classmethod
    def _check_param_names(cls, value: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for name in value:
            if not re.match(r"^[a-z_][a-z0-9_]*$", name):
                raise ValueError(f"param name '{name}' must be a lowercase identifier")
        return value

    @model_validator(mode="after")
    def _check_kind_section(self) -> Manifest:
        if self.kind == "model" and self.model is None:
            raise ValueError("a model bundle needs a `model:` section")
        if self.kind == "dataset" and self.dataset is None:
            raise ValueError("a dataset bundle needs a `dataset:` section")
        if self.kind != "model" and self.model is not None:
            raise ValueError("only model bundles have a `model:` section")
        if self.kind != "dataset" and self.dataset is not None:
            raise ValueError("only dataset bundles have a `dataset:` section")
        return self

    @property
    def entry_module(self) -> str:
        return self.entry.split(":", 1)[0]

    @property
    def entry_attribute(self) -> str:
        return self.entry.split(":", 1)[1]

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.id)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def manifest_errors(data: object, path: Path) -> list[ManifestError]:
    """Every problem in a parsed manifest, each as a ManifestError with its field."""
    if not isinstance(data, dict):
        return [
            ManifestError(
                f"the manifest must be a mapping of fields, not {type(data).__name__}", path=path
            )
        ]
    try:
        Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append(ManifestError(msg, path=path, field=_field_path(err["loc"])))
        return problems
    except Exception as exc:  # pydantic raises TypeError etc. for exotic input
        return [ManifestError(f"invalid manifest: {exc}", path=path)]
    return []


class _UniqueKeys:
    """Refuse a key given twice in one mapping.

    YAML calls a repeated key an error; PyYAML would keep the last value and drop the
    first without a word (a second `params:` would silently replace the first).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then a key of its own overrides base on purpose
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key '{key}'",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


class UniqueKeyLoader(_UniqueKeys, yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""


# libyaml's parser is about ten times faster than the pure-Python one; the constructor
# (where the duplicate-key check lives) is Python in both
if hasattr(yaml, "CSafeLoader"):

    class UniqueKeyFastLoader(_UniqueKeys, yaml.CSafeLoader):
        """libyaml's safe loader, refusing a key given twice in one mapping."""

else:  # PyYAML built without libyaml
    UniqueKeyFastLoader = UniqueKeyLoader  # type: ignore[misc]


def load_yaml(text: str) -> object:
    """Parse YAML with the safe loader (libyaml's when installed), refusing duplicate keys
    and alias bombs."""
    return parse_bounded(text, UniqueKeyFastLoader)


def read_manifest_data(path: Path) -> object:
    """Read plugin.yaml with the safe loader; YAML syntax errors carry the line."""
    hit, cached = manifest_cache.lookup(path)
    if hit:
        return cached
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError("no plugin.yaml in this folder", path=path) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text ({exc.reason})", path=path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror}", path=path) from None
    data = bounded_yaml(text, path, error=ManifestError, loader=UniqueKeyFastLoader)
    manifest_cache.store(path, data)
    return data


def load_manifest(path: Path) -> Manifest:
    """Parse and validate a manifest file; raise the first problem (all are in .problems)."""
    path = Path(path)
    data = read_manifest_data(path)
    problems = manifest_errors(data, path)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first.message += f" (and {len(problems) - 1} more problem(s))"
            first.args = (first.render(),)
        first.problems = problems  # type: ignore[attr-defined]
        raise first
    return Manifest.model_validate(data)
