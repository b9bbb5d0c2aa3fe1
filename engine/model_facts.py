"""The chosen model's facts before a run starts: derived ones checked by the capability graph.

A model bundle whose manifest says `derived: true` (the generic `hf` bundle)
learns its architecture, layer kinds, tasks and modules from the model its
params name. `derived_manifest` is the hook `kernel.recipe.resolve` calls, so a
technique that does not fit that model is refused before a run folder exists;
`describe` is what the faces show once a model is chosen.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kernel.capabilities import with_facts
from kernel.errors import ParamError
from kernel.manifest import Manifest
from kernel.registry import Bundle
from sdk.context import ModelContext, ModelFacts
from sdk.hf import ModelLoadError
from sdk.hf_facts import DerivedFacts


def derived_facts(bundle: Bundle, params: dict[str, Any]) -> DerivedFacts | None:
    """The facts the bundle derives for these params (None when its manifest's facts hold).

    A model that cannot be read is a ParamError on `model.name_or_path`.
    """
    section = bundle.manifest.model
    if section is None or not section.derived:
        return None
    ctx = ModelContext(
        params=dict(params),
        bundle_dir=bundle.path,
        facts=ModelFacts.from_manifest_section(section.model_dump()),
        task=section.tasks[0],
    )
    try:
        provider: Any = bundle.instantiate()
        return provider.derived_facts(ctx)
    except ModelLoadError as exc:
        raise ParamError(str(exc), path=bundle.path, field="model.name_or_path") from None


def derived_manifest(bundle: Bundle, params: dict[str, Any]) -> Manifest:
    """The bundle's manifest with the facts of the model its params name."""
    derived = derived_facts(bundle, params)
    if derived is None:
        return bundle.manifest
    return with_facts(bundle.manifest, derived.section(), derived.provides)


def describe(bundle: Bundle, params: dict[str, Any]) -> dict[str, Any]:
    """The model's facts as plain data: derived ones, or the manifest's."""
    derived = derived_facts(bundle, params)
    if derived is not None:
        return asdict(derived)
    facts = bundle.manifest.model.model_dump() if bundle.manifest.model else {}
    return {**facts, "provides": list(bundle.manifest.provides)}
