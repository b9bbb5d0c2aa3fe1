"""A sweep's report, from its study and its trials' run folders.

Writes into the sweep folder: trials.csv (one row per trial), best.json and
best-recipe.yaml (the best trial's recipe, ready for `peftlab train --recipe`),
importance.json, three plots as PNG (Optuna's matplotlib backend: plotly's PNG
export needs kaleido and a Chrome, which a headless machine often lacks) and all
three as one interactive HTML page (Optuna's plotly figures), and report.md.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.recipe import load_recipe
from kernel.runs import RunFolder, atomic_write_json, atomic_write_text

PLOTS = {
    "history": ("plot_optimization_history", "optimization_history.png"),
    "parallel": ("plot_parallel_coordinate", "parallel_coordinate.png"),
    "importance": ("plot_param_importances", "param_importances.png"),
}
HTML_FILE = "plots.html"


@dataclass
class SweepReport:
    folder: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    importance: dict[str, float]
    files: dict[str, Path] = field(default_factory=dict)


def trial_rows(study: Any, runs_dir: Path, keys: list[str]) -> list[dict[str, Any]]:
    """One row per trial: number, state, the metric, the searched values, its run."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = trial.duration.total_seconds() if trial.duration else None
        value = trial.value if trial.value is not None else trial.user_attrs.get("value")
        row = {"trial": trial.number, "state": trial.state.name.lower(), "value": value}
        row.update({key: trial.params.get(key) for key in keys})
        row.update({"duration_s": duration, "run_id": trial.user_attrs.get("run_id", "")})
        rows.append(row)
    return rows


def best_trial(study: Any) -> Any | None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def save_best_recipe(trial: Any, runs_dir: Path, name: str, target: Path) -> None:
    """The best trial's run recipe as a plain recipe file (ids and params, no paths or hashes)."""
    run = RunFolder(runs_dir / trial.user_attrs["run_id"])
    recipe = load_recipe(run.recipe_file).model_copy(update={"name": f"{name}-best"})
    atomic_write_text(target, recipe.to_yaml())


def importances(study: Any) -> dict[str, float]:
    """Each searched param's importance (Optuna's default evaluator); empty until two trials
    completed with different values."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "importances will be equal" on tied trials
        try:
            return dict(optuna.importance.get_param_importances(study))
        except (RuntimeError, ValueError):
            return {}


def write_plots(study: Any, folder: Path) -> dict[str, Path]:
    """PNGs through matplotlib, one interactive HTML page through plotly; a plot Optuna cannot
    draw yet (too few completed trials) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_png

    files: dict[str, Path] = {}
    html_parts = []
    if best_trial(study) is None:  # nothing completed: nothing to draw
        return files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib backend is marked experimental
        for key, (function, filename) in PLOTS.items():
            try:
                axes = getattr(vis_png, function)(study)
                figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
                figure.set_size_inches(8, 5)
                figure.tight_layout()
                figure.savefig(folder / filename, dpi=110)
                plt.close(figure)
                files[key] = folder / filename
                html_parts.append(getattr(vis, function)(study))
            except (RuntimeError, ValueError, ZeroDivisionError):
                continue
    if html_parts:
        page = io.StringIO()
        for index, figure in enumerate(html_parts):
            page.write(figure.to_html(full_html=False, include_plotlyjs=index == 0))
        atomic_write_text(folder / HTML_FILE, f"<html><body>{page.getvalue()}</body></html>\n")
        files["html"] = folder / HTML_FILE
    return files


def write_sweep_report(study: Any, folder: Path, settings: Any, keys: list[str]) -> SweepReport:
    """Everything the sweep's report holds, written into its folder."""
    runs_dir = folder / "runs"
    rows = trial_rows(study, runs_dir, keys)
    best = best_trial(study)
    best_info = None
    files: dict[str, Path] = {}
    if best is not None:
        best_info = {
            "trial": best.number,
            "metric": settings.metric,
            "value": best.value,
            "params": best.params,
            "run_id": best.user_attrs.get("run_id"),
        }
        save_best_recipe(best, runs_dir, settings.name, folder / "best-recipe.yaml")
        files["best_recipe"] = folder / "best-recipe.yaml"
        atomic_write_json(folder / "best.json", best_info)
    importance = importances(study)
    atomic_write_json(folder / "importance.json", importance)
    _write_csv(folder / "trials.csv", rows)
    files["trials"] = folder / "trials.csv"
    files.update(write_plots(study, folder))
    report = SweepReport(folder, rows, best_info, importance, files)
    atomic_write_text(folder / "report.md", markdown(report, settings, keys))
    files["markdown"] = folder / "report.md"
    return report


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(report: SweepReport, settings: Any, keys: list[str]) -> str:
    lines = [f"# Sweep {settings.name}", ""]
    lines.append(
        f"{settings.sampler} sampler, {len(report.rows)} trial(s), {settings.direction} "
        f"`{settings.metric}`" + (", median pruning" if settings.prune else "") + "."
    )
    lines += ["", "Searched: " + ", ".join(f"`{s}`" for s in settings.search), ""]
    if report.best:
        shown = ", ".join(f"{k}={_cell(v)}" for k, v in report.best["params"].items())
        lines += [
            f"**Best: trial {report.best['trial']}** ({shown}): {settings.metric} "
            f"{report.best['value']:.4f}, run `{report.best['run_id']}`. "
            "Retrain it with `peftlab train --recipe best-recipe.yaml`.",
            "",
        ]
    header = ["trial", "state", settings.metric, *keys, "duration_s", "run_id"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report.rows:
        cells = [row["trial"], row["state"], row["value"], *(row[k] for k in keys)]
        cells += [row["duration_s"], row["run_id"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if report.importance:
        lines += ["", "Parameter importance (optuna.importance): " + ", ".join(
            f"{k} {v:.2f}" for k, v in report.importance.items()
        )]  # fmt: skip
    plots = [
        f"![{key}]({path.name})" for key, path in report.files.items() if path.suffix == ".png"
    ]
    if plots:
        lines += ["", *plots, "", f"Interactive: [{HTML_FILE}]({HTML_FILE})"]
    return "\n".join(lines) + "\n"


def read_best(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "best.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
