"""The capability graph: which bundles work together, and why not.

Built from manifests alone (no imports), so it is cheap to rebuild after every
registry change. An edge between two bundles of different kinds is either
compatible or carries the reasons it is not.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from kernel.manifest import Manifest
from kernel.registry import Snapshot

#: the `architecture` of a model bundle that derives its facts from the chosen model's config
AUTO_ARCHITECTURE = "auto"

PAIRS = (
    ("dataset", "model"),
    ("technique", "model"),
    ("technique", "dataset"),
    ("trainer", "dataset"),
)


@dataclass(frozen=True)
class Edge:
    source: tuple[str, str]
    target: tuple[str, str]
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


@lru_cache(maxsize=512)
def missing_package(requirement: str) -> str | None:
    """Why a pip requirement is not met (None when it is), without importing the package."""
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return f"invalid requirement '{requirement}'"
    try:
        installed = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return f"needs package {requirement} (not installed)"
    if req.specifier and not req.specifier.contains(installed, prereleases=True):
        return f"needs package {requirement} (installed: {installed})"
    return None


def model_tasks(model: Manifest) -> list[str]:
    return list(model.model.tasks) if model.model else []


def model_misfits(user: Manifest, model: Manifest) -> list[str]:
    """Why a technique or trainer cannot use a model, in terms of the model's facts.

    An explicit exclusion names the architecture and gives its own reason; every
    other reason says which fact is missing (task, layer kind, provided feature).
    The legacy `architectures` allow-list of api-1 bundles is still honoured.
    """
    facts = model.model
    if facts is None:
        return []
    req = user.requires
    arch = facts.architecture
    reasons = [
        f"{user.id}: excluded for architecture {arch}: {ex.reason}"
        for ex in req.excludes
        if ex.architecture == arch
    ]
    if req.architectures and arch not in req.architectures:
        reasons.append(f"{user.id}: architecture {arch} not supported")
    if req.tasks and not set(req.tasks) & set(facts.tasks):
        reasons.append(
            f"{user.id}: none of model {_model_name(model)}'s tasks ({', '.join(facts.tasks)}) "
            "supported"
        )
    if req.layers and not set(req.layers) & set(facts.layer_kinds):
        reasons.append(
            f"{user.id}: adapts {' or '.join(req.layers)} layers; "
            f"model {_model_name(model)}'s layers are {', '.join(facts.layer_kinds) or 'unknown'}"
        )
    for capability in req.provides:
        if capability not in model.provides:
            reasons.append(f"{user.id}: needs a model that provides '{capability}'")
    return reasons


def _model_name(model: Manifest) -> str:
    # a bundle that derives its facts speaks for the architecture it found, not for itself
    facts = model.model
    if (
        facts is not None
        and facts.architecture != AUTO_ARCHITECTURE
        and model.id != facts.architecture
    ):
        return f"{model.id} ({facts.architecture})"
    return model.id


def with_facts(model: Manifest, facts: dict[str, Any], provides: list[str]) -> Manifest:
    """A model manifest whose `model:` facts and `provides` are replaced by derived ones.

    The SDK derives facts from a chosen model's config; the kernel only takes them
    as data and checks them like declared ones.
    """
    section = {**model.model.model_dump(), **facts, "derived": False} if model.model else facts
    data = {**model.model_dump(), "model": section, "provides": list(provides)}
    return Manifest.model_validate(data)


def incompatibilities(a: Manifest, b: Manifest) -> list[str]:
    """Reasons why bundles a and b cannot be used together (empty list = compatible)."""
    if a.kind == b.kind:
        return []
    if b.kind in ("technique", "trainer") or (a.kind == "model" and b.kind == "dataset"):
        a, b = b, a
    reasons: list[str] = []
    if a.kind == "dataset" and b.kind == "model":
        task = a.dataset.task if a.dataset else None
        if task not in model_tasks(b):
            reasons.append(f"model {b.id} does not support task {task}")
    elif a.kind in ("technique", "trainer") and b.kind == "model":
        reasons += model_misfits(a, b)
    elif a.kind in ("technique", "trainer") and b.kind == "dataset":
        task = b.dataset.task if b.dataset else None
        if a.requires.tasks and task not in a.requires.tasks:
            reasons.append(f"{a.id}: task {task} not supported")
    return reasons


@dataclass
class CapabilityGraph:
    """Nodes are manifests; edges connect every pair of kinds that must fit together."""

    nodes: dict[tuple[str, str], Manifest]
    edges: list[Edge] = field(default_factory=list)
    package_problems: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: Snapshot) -> CapabilityGraph:
        nodes = {key: bundle.manifest for key, bundle in snapshot.bundles.items()}
        graph = cls(nodes)
        for key, manifest in nodes.items():
            problems = [p for req in manifest.requires.packages if (p := missing_package(req))]
            if problems:
                graph.package_problems[key] = problems
        for kind_a, kind_b in PAIRS:
            for key_a, a in nodes.items():
                if key_a[0] != kind_a:
                    continue
                for key_b, b in nodes.items():
                    if key_b[0] == kind_b:
                        graph.edges.append(Edge(key_a, key_b, tuple(incompatibilities(a, b))))
        return graph

    def reasons(self, a: tuple[str, str], b: tuple[str, str]) -> list[str]:
        if a not in self.nodes or b not in self.nodes:
            return [f"unknown plugin {a if a not in self.nodes else b}"]
        return incompatibilities(self.nodes[a], self.nodes[b])

    def options(self, kind: str, chosen: dict[str, str]) -> dict[str, list[str]]:
        """For each bundle of `kind`: the reasons it does not fit the chosen ones (empty = fits)."""
        result: dict[str, list[str]] = {}
        for key in sorted(k for k in self.nodes if k[0] == kind):
            reasons = list(self.package_problems.get(key, []))
            for other_kind, other_id in chosen.items():
                if other_kind != kind and other_id and (other_kind, other_id) in self.nodes:
                    reasons += self.reasons(key, (other_kind, other_id))
            result[key[1]] = reasons
        return result

    def check(
        self,
        chosen: dict[str, str],
        overrides: dict[tuple[str, str], Manifest] | None = None,
    ) -> list[str]:
        """All reasons the chosen combination does not work together.

        `overrides` replaces the manifest of a chosen bundle for this check, e.g. a
        model bundle's facts once they were derived from the model it will load.
        """
        reasons: list[str] = []
        keys = [(kind, bundle_id) for kind, bundle_id in chosen.items() if bundle_id]
        for key in keys:
            reasons += self.package_problems.get(key, [])
        nodes = {**self.nodes, **(overrides or {})}
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if a not in nodes or b not in nodes:
                    reasons.append(f"unknown plugin {a if a not in nodes else b}")
                else:
                    reasons += incompatibilities(nodes[a], nodes[b])
        return reasons

    def compatible_peers(self, key: tuple[str, str]) -> dict[str, dict[str, list[str]]]:
        """For one bundle: every bundle of the other kinds with its reasons (empty = fits)."""
        peers: dict[str, dict[str, list[str]]] = {}
        for other in sorted(self.nodes):
            if other[0] == key[0]:
                continue
            if not any({key[0], other[0]} == set(pair) for pair in PAIRS):
                continue
            peers.setdefault(other[0], {})[other[1]] = self.reasons(key, other)
        return peers

    def to_json(self) -> dict[str, object]:
        return {
            "nodes": [
                {
                    "kind": k,
                    "id": i,
                    "name": m.name,
                    "missing": self.package_problems.get((k, i), []),
                }
                for (k, i), m in sorted(self.nodes.items())
            ],
            "edges": [
                {
                    "source": "/".join(e.source),
                    "target": "/".join(e.target),
                    "ok": e.ok,
                    "reasons": list(e.reasons),
                }
                for e in self.edges
            ],
        }

    def to_dot(self) -> str:
        lines = ["graph peftlab {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
        for kind, bundle_id in sorted(self.nodes):
            lines.append(f'  "{kind}/{bundle_id}" [label="{bundle_id}\\n({kind})"];')
        for edge in self.edges:
            if edge.ok:
                lines.append(f'  "{"/".join(edge.source)}" -- "{"/".join(edge.target)}";')
        lines.append("}")
        return "\n".join(lines)

    def to_text(self) -> str:
        lines = []
        for key in sorted(self.nodes):
            fits: list[tuple[tuple[str, str], tuple[str, ...]]] = []
            misfits: list[tuple[tuple[str, str], tuple[str, ...]]] = []
            for edge in self.edges:
                if key not in (edge.source, edge.target):
                    continue
                other = edge.target if edge.source == key else edge.source
                (fits if edge.ok else misfits).append((other, edge.reasons))
            lines.append(f"{key[0]} {key[1]}")
            if self.package_problems.get(key):
                lines.append("  unavailable: " + "; ".join(self.package_problems[key]))
            if fits:
                lines.append("  works with: " + ", ".join(f"{k}/{i}" for (k, i), _ in sorted(fits)))
            for (k, i), reasons in sorted(misfits):
                lines.append(f"  not with {k}/{i}: {'; '.join(reasons)}")
        return "\n".join(lines)
