"""Plugins: every bundle with its status and origin, the errors of broken ones, and the
capability graph (what works with what, and why not)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from kernel.registry import describe_status
from ui import charts
from ui.views import _shared

COLUMNS = ["kind", "id", "version", "status", "origin", "path"]


def main() -> None:
    kernel = _shared.kernel()
    snapshot = kernel.snapshot
    graph = kernel.graph()
    st.title("Plugins")
    _bundle_table(snapshot)
    _capability_graph(graph)
    _details(snapshot, graph)


def _bundle_table(snapshot: Any) -> None:
    """Every bundle with its status and origin, then one error box per broken one."""
    rows = describe_status(snapshot)
    broken = [r for r in rows if r["error"]]
    ok = sum(1 for r in rows if r["status"] == "ok")
    st.caption(
        f"{ok} active bundle(s), {len(broken)} with problems, generation {snapshot.generation}. "
        "Edit a plugin.yaml and the next rerun shows the change."
    )
    st.dataframe(
        pd.DataFrame(rows, columns=COLUMNS),
        hide_index=True,
        width="stretch",
        column_config={"path": st.column_config.TextColumn("path", width="large")},
    )
    for row in broken:
        st.error(
            f"**{row['kind']}/{row['id']}** ({row['status']}, {row['origin']}): {row['error']}"
        )


def _capability_graph(graph: Any) -> None:
    """The network of what works with what, and the table of what does not fit, and why."""
    st.subheader("Capability graph")
    st.caption(
        "A line joins two plugins that work together; hover a plugin for what it does not fit. "
        "Plugins with missing packages have a red ring."
    )
    data = graph.to_json()
    st.plotly_chart(charts.capability_network(data), key="capability-network", width="stretch")
    misfits = [
        {"plugin": e["source"], "not with": e["target"], "why": "; ".join(e["reasons"])}
        for e in data["edges"]
        if not e["ok"]
    ]
    misfits += [
        {
            "plugin": f"{n['kind']}/{n['id']}",
            "not with": "(anything)",
            "why": "; ".join(n["missing"]),
        }
        for n in data["nodes"]
        if n["missing"]
    ]
    with st.expander(f"What does not fit, and why ({len(misfits)})"):
        if misfits:
            st.dataframe(pd.DataFrame(misfits), hide_index=True, width="stretch", key="misfits")
        else:
            st.caption("Every plugin fits every plugin of the kinds it is combined with.")


def _details(snapshot: Any, graph: Any) -> None:
    """One chosen bundle: what it is, what it works with, and its manifest."""
    st.subheader("Details")
    keys = sorted(snapshot.bundles)
    if not keys:
        return
    pick = st.selectbox(
        "Bundle", keys, format_func=lambda k: f"{k[0]} / {k[1]}", key="plugin_detail"
    )
    bundle = snapshot.bundles[pick]
    manifest = bundle.manifest
    st.markdown(f"**{manifest.name}** {manifest.version} · from `{bundle.path}` ({bundle.origin})")
    if manifest.summary:
        st.write(manifest.summary)
    if manifest.paper:
        st.markdown(f"Paper: {manifest.paper}")
    for peer_kind, peers in graph.compatible_peers(pick).items():
        fits = [i for i, reasons in peers.items() if not reasons]
        st.markdown(f"Works with {peer_kind}: {', '.join(fits) or '(none)'}")
        for peer_id, reasons in peers.items():
            if reasons:
                st.caption(f"not {peer_id}: {'; '.join(reasons)}")
    with st.expander("manifest"):
        st.code(
            yaml.safe_dump(
                manifest.model_dump(mode="json", exclude_defaults=True), sort_keys=False
            ),
            language="yaml",
        )


main()
