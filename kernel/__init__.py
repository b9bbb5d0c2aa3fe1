"""peftlab's kernel: manifests, discovery, registry, capability graph, hot reload, jobs.

It imports no machine-learning library, so listing plugins stays fast.
"""

from kernel.config import KernelConfig
from kernel.core import Kernel
from kernel.errors import (
    DatasetError,
    IncompatibleError,
    ManifestError,
    MissingDependencyError,
    ParamError,
    PeftlabError,
    PluginLoadError,
    RecipeError,
    RunError,
    UnknownPluginError,
)

__all__ = [
    "DatasetError",
    "IncompatibleError",
    "Kernel",
    "KernelConfig",
    "ManifestError",
    "MissingDependencyError",
    "ParamError",
    "PeftlabError",
    "PluginLoadError",
    "RecipeError",
    "RunError",
    "UnknownPluginError",
]
