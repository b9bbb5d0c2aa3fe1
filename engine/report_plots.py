"""A comparison report's PNG plots; completed runs only. matplotlib is imported inside
`write_plots` with the Agg backend: no display is needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.report_rows import ReportRow, row_choice, row_metric

PLOT_FILES = {
    "accuracy_vs_trainable": "accuracy_vs_trainable.png",
    "train_time": "train_time.png",
    "peak_memory": "peak_memory.png",
    "loss_curves": "loss_curves.png",
}


def write_plots(rows: Sequence[ReportRow], out_dir: Path) -> list[Path]:
    """The four PNGs of a report; completed runs only. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.completed]
    if not done:
        return []
    colours = [plt.get_cmap("tab20")(i % 20) for i in range(len(done))]
    figures = {
        "accuracy_vs_trainable": _accuracy_vs_trainable(rows, done, colours),
        "train_time": _bars(done, colours, "train_runtime_s", "seconds", "Training time"),
        "peak_memory": _bars(done, colours, "peak_memory_mb", "MiB", "Peak memory while training"),
        "loss_curves": _loss_curves(done, colours),
    }
    written = []
    for key, fig in figures.items():
        path = out_dir / PLOT_FILES[key]
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _accuracy_vs_trainable(
    rows: Sequence[ReportRow], done: list[ReportRow], colours: list[Any]
) -> Any:
    """Accuracy against the share of trainable parameters, the front ringed."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 5))
    points = [
        (r, r.results.get("trainable_percent"), r.results.get("accuracy"), c)
        for r, c in zip(done, colours, strict=True)
    ]
    points = [(r, x, y, c) for r, x, y, c in points if x and y is not None]
    for row, x, y, colour in points:
        ax.scatter([x], [y], color=colour, s=50, zorder=3)
        ax.annotate(row.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    _draw_front(ax, rows, points)
    baselines = sorted(
        r.results["baseline_accuracy"]
        for r in done
        if r.results.get("baseline_accuracy") is not None
    )
    if baselines:
        median = baselines[len(baselines) // 2]
        ax.axhline(
            median, color="grey", linestyle=":", linewidth=1, label="before training (median)"
        )
    if baselines or front_labels(rows):
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy against trainable share")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def _bars(done: list[ReportRow], colours: list[Any], column: str, xlabel: str, title: str) -> Any:
    """One horizontal bar per run of a results column (0 where the run has none)."""
    import matplotlib.pyplot as plt

    values = [r.results.get(column) or 0.0 for r in done]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(done) + 1.5))
    ax.barh([r.label for r in done], values, color=colours)
    for index, value in enumerate(values):
        ax.text(value, index, f" {value:,.0f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.margins(x=0.15)
    return fig


def _loss_curves(done: list[ReportRow], colours: list[Any]) -> Any:
    """Each run's logged training loss against the step."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for row, colour in zip(done, colours, strict=True):
        if row.loss:
            ax.plot(
                [s for s, _ in row.loss], [v for _, v in row.loss], label=row.label, color=colour
            )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax.grid(True, alpha=0.3)
    if any(r.loss for r in done):
        ax.legend(fontsize=8, ncol=2)
    return fig


def front_labels(rows: Sequence[ReportRow]) -> list[str]:
    """Labels of the rows on the accuracy-vs-trainable-share front (the chart's two axes)."""
    if not any(r.completed for r in rows) or row_metric(rows) != "accuracy":
        return []
    found = row_choice(rows, costs=("trainable_percent",))
    return [c.label for c in found.candidates if c.on_front]


def _draw_front(ax: Any, rows: Sequence[ReportRow], points: list[tuple[Any, ...]]) -> None:
    """Ring the front's points and join them, left to right, with a dashed line."""
    labels = set(front_labels(rows))
    front = sorted((x, y) for row, x, y, _ in points if row.label in labels)
    if not front:
        return
    xs, ys = [x for x, _ in front], [y for _, y in front]
    ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
    ax.plot(xs, ys, color="black", linestyle="--", linewidth=1, zorder=2, label="Pareto front")
