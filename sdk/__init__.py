"""peftlab's plugin SDK (api 1): what a bundle imports, and nothing else."""

from sdk.base import DatasetProvider, ModelProvider, Plugin, Technique, TrainerPlugin
from sdk.context import (
    DatasetContext,
    DatasetSplits,
    LoadedModel,
    ModelContext,
    ModelFacts,
    PluginHandle,
    Reporter,
    RunContext,
    TechniqueContext,
)
from sdk.helpers import AUTO, count_parameters, resolve_target_modules

API_VERSION = 1

__all__ = [
    "API_VERSION",
    "AUTO",
    "DatasetContext",
    "DatasetProvider",
    "DatasetSplits",
    "LoadedModel",
    "ModelContext",
    "ModelFacts",
    "ModelProvider",
    "Plugin",
    "PluginHandle",
    "Reporter",
    "RunContext",
    "Technique",
    "TechniqueContext",
    "TrainerPlugin",
    "count_parameters",
    "resolve_target_modules",
]
