"""Plotly figures for runs: loss curves, accuracy against trainable share, bars, the graph.

Pure functions from plain data to figures, so they can be tested without Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#EECA3B",
)
KIND_COLOURS = {
    "dataset": "#54A24B",
    "model": "#4C78A8",
    "technique": "#F58518",
    "trainer": "#B279A2",
}


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        margin={"l": 50, "r": 20, "t": 50, "b": 20},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22},
        height=440,
    )
    return fig


def loss_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], *, log_y: bool = False
) -> go.Figure:
    """Training loss (solid, dots) and validation loss (dashed, diamonds) per run against
    step; every series has its own colour, and markers keep a single logged point visible."""
    fig = go.Figure()
    for index, (name, rows) in enumerate(runs.items()):
        train = [(r["step"], r["loss"]) for r in rows if _num(r.get("loss")) and "step" in r]
        evals = [
            (r["step"], r["eval_loss"]) for r in rows if _num(r.get("eval_loss")) and "step" in r
        ]
        series = (
            (train, "train", {"dash": "solid"}, "circle"),
            (evals, "validation", {"dash": "dash"}, "diamond"),
        )
        for offset, (points, what, line, symbol) in enumerate(series):
            if not points:
                continue
            colour = PALETTE[(2 * index + offset) % len(PALETTE)]
            fig.add_trace(
                go.Scatter(
                    x=[s for s, _ in points],
                    y=[v for _, v in points],
                    mode="lines+markers",
                    name=f"{name} {what}",
                    line={"color": colour, **line},
                    marker={"symbol": symbol, "size": 7 if what == "train" else 9},
                )
            )
    _layout(fig, "Loss", "step", "loss")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def accuracy_vs_trainable(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Each run as a point: share of trainable parameters (log x) against accuracy."""
    points = [r for r in rows if _num(r.get("accuracy")) and _num(r.get("trainable_percent"))]
    fig = go.Figure()
    for index, row in enumerate(points):
        fig.add_trace(
            go.Scatter(
                x=[max(float(row["trainable_percent"]), 1e-6)],
                y=[row["accuracy"]],
                mode="markers+text",
                text=[str(row.get("technique") or row["run"])],
                textposition="top center",
                cliponaxis=False,  # a label near the plot's edge is drawn whole
                marker={"size": 14, "color": PALETTE[index % len(PALETTE)]},
                name=str(row["run"]),
                hovertext=[
                    f"{row['run']}: accuracy {row['accuracy']:.3f}, "
                    f"{row['trainable_percent']:.3g}% trainable"
                ],
                hoverinfo="text",
            )
        )
    front = pareto_front(points)
    if len(front) > 1:  # a single run is its own front: no line to draw
        fig.add_trace(
            go.Scatter(
                x=[max(float(r["trainable_percent"]), 1e-6) for r in front],
                y=[r["accuracy"] for r in front],
                mode="lines+markers",
                line={"dash": "dash", "color": "black", "width": 1},
                marker={"size": 22, "symbol": "circle-open", "color": "black"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    _layout(
        fig,
        "Accuracy against trainable parameters",
        "trainable parameters (% of all, log scale)",
        "validation accuracy",
    )
    fig.update_layout(showlegend=False, margin={"l": 70, "r": 40, "t": 60, "b": 60})
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def pareto_front(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows no other row beats on accuracy at no larger trainable share, left to right."""
    from engine.choose import candidate, mark_front
    from engine.metrics import Interval

    candidates = [
        candidate(str(i), str(i), r, Interval(float(r["accuracy"]), 0.0, 0.0, 0.0))
        for i, r in enumerate(rows)
    ]
    mark_front(candidates, "accuracy", ("trainable_percent",))
    chosen = [rows[int(c.run_id)] for c in candidates if c.on_front]
    return sorted(chosen, key=lambda r: float(r["trainable_percent"]))


def bar(rows: Sequence[Mapping[str, Any]], column: str, title: str, unit: str) -> go.Figure:
    """One bar per run for one numeric result column."""
    usable = [r for r in rows if _num(r.get(column))]
    fig = go.Figure(
        go.Bar(
            x=[str(r["run"]) for r in usable],
            y=[r[column] for r in usable],
            text=[f"{r[column]:.3g}" for r in usable],
            marker={"color": [PALETTE[i % len(PALETTE)] for i in range(len(usable))]},
            hovertext=[str(r.get("technique", "")) for r in usable],
        )
    )
    return _layout(fig, title, "run", unit)


def probabilities(scores: Mapping[str, float]) -> go.Figure:
    """Horizontal bars of one prediction's class probabilities, the winner highlighted."""
    labels = list(scores)
    best = max(labels, key=scores.__getitem__) if labels else None
    fig = go.Figure(
        go.Bar(
            x=[scores[label] for label in labels],
            y=labels,
            orientation="h",
            text=[f"{scores[label]:.1%}" for label in labels],
            marker={"color": [PALETTE[0] if label == best else "#BBBBBB" for label in labels]},
        )
    )
    fig.update_layout(
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        height=max(160, 60 * len(labels)),
        margin={"l": 20, "r": 20, "t": 10, "b": 30},
    )
    return fig


COLUMNS = ("technique", "model", "dataset", "trainer")  # left to right: most edges join neighbours
LABEL_SIDE = {
    "technique": "middle left",
    "model": "top center",
    "dataset": "top center",
    "trainer": "middle right",
}


def capability_network(graph_json: Mapping[str, Any]) -> go.Figure:
    """The capability graph: one column of nodes per kind, a line for every pair that fits.

    A node with missing packages gets a red ring; hovering a node lists what it does not
    fit and why.
    """
    nodes = list(graph_json.get("nodes", []))
    position = _node_positions(nodes)
    missing = {f"{n['kind']}/{n['id']}": list(n.get("missing") or []) for n in nodes}
    edge_x, edge_y, misfits = _edges(graph_json.get("edges", []), position)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": "rgba(120,120,120,0.25)", "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    for kind in COLUMNS:
        keys = [k for k in position if k.startswith(f"{kind}/")]
        if keys:
            fig.add_trace(_kind_nodes(kind, keys, position, missing, misfits))
    tallest = max((sum(1 for n in nodes if n["kind"] == k) for k in COLUMNS), default=1)
    fig.update_layout(
        height=max(320, 42 * tallest + 80),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False, "range": [-0.6, len(COLUMNS) - 0.4]},
        yaxis={"visible": False},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _node_positions(nodes: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """kind/id -> (x, y): one column per kind, each column centred on y = 0."""
    position: dict[str, tuple[float, float]] = {}
    for x, kind in enumerate(COLUMNS):
        of_kind = [n for n in nodes if n["kind"] == kind]
        for y, node in enumerate(of_kind):
            position[f"{kind}/{node['id']}"] = (float(x), (len(of_kind) - 1) / 2 - y)
    return position


def _edges(
    edges: list[dict[str, Any]], position: dict[str, tuple[float, float]]
) -> tuple[list[float | None], list[float | None], dict[str, list[str]]]:
    """The line coordinates of the pairs that fit (None breaks the line between pairs), and
    for each node the lines saying what it does not fit and why."""
    misfits: dict[str, list[str]] = {}
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for edge in edges:
        a, b = edge["source"], edge["target"]
        if a not in position or b not in position:
            continue
        if edge["ok"]:
            edge_x += [position[a][0], position[b][0], None]
            edge_y += [position[a][1], position[b][1], None]
        else:
            for here, there in ((a, b), (b, a)):
                misfits.setdefault(here, []).append(f"not {there}: {'; '.join(edge['reasons'])}")
    return edge_x, edge_y, misfits


def _kind_nodes(
    kind: str,
    keys: list[str],
    position: dict[str, tuple[float, float]],
    missing: dict[str, list[str]],
    misfits: dict[str, list[str]],
) -> go.Scatter:
    """One kind's nodes: a red ring where packages are missing, the misfits on hover."""
    return go.Scatter(
        x=[position[k][0] for k in keys],
        y=[position[k][1] for k in keys],
        mode="markers+text",
        text=[k.split("/", 1)[1] for k in keys],
        textposition=LABEL_SIDE[kind],
        marker={
            "size": 16,
            "color": KIND_COLOURS[kind],
            "line": {"width": [3 if missing[k] else 0 for k in keys], "color": "#E45756"},
        },
        hovertext=["<br>".join([k, *missing[k], *misfits.get(k, [])[:12]]) for k in keys],
        hoverinfo="text",
        name=kind,
    )


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Counts of (true label, predicted label), true labels as rows, the count in each cell."""
    names = [str(label) for label in labels]
    fig = go.Figure(
        go.Heatmap(
            z=[list(row) for row in matrix],
            x=names,
            y=names,
            text=[[str(v) for v in row] for row in matrix],
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    _layout(fig, "Confusion matrix", "predicted", "true")
    fig.update_yaxes(autorange="reversed")
    return fig
