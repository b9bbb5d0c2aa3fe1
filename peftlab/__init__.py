"""peftlab for notebooks and scripts: train, compare, evaluate and use PEFT runs from Python.

    import peftlab
    run = peftlab.train()                        # demo data x MiniLM x LoRA, offline
    run.results["accuracy"], run.metrics.tail()
    run.predict(["a warm, funny film"])
    peftlab.compare(["lora", "ia3"], dataset="demo", epochs=1)
    peftlab.evaluate(run, "held_out.csv")[0].metrics

Training runs in its own process, exactly as `peftlab train` does; calls block with a
progress bar (terminal or Jupyter) unless `wait=False`. Errors are the kernel's own
exception types (`peftlab.PeftlabError` and its subclasses), one line each.
"""

from kernel.errors import ParamError, PeftlabError, PluginLoadError, RecipeError, RunError
from peftlab.api import PluginInfo, compare, evaluate, graph, plugins, run, runs, train
from peftlab.run import Run
from peftlab.session import configure

__all__ = [
    "ParamError",
    "PeftlabError",
    "PluginInfo",
    "PluginLoadError",
    "RecipeError",
    "Run",
    "RunError",
    "compare",
    "configure",
    "evaluate",
    "graph",
    "plugins",
    "run",
    "runs",
    "train",
]
