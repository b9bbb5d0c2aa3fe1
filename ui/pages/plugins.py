"""Plugins: every bundle with its status and origin, the errors of broken ones, and the
capability graph (what works with what, and why not)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from kernel.registry import describe_status
from ui import charts
from ui.pages import _shared

COLUMNS = ["kind", "id", "version", "status", "origin", "path"]


def main() -> None:
    kernel = _shared.kernel()
    snapshot = kernel.snapshot
    graph = kernel.graph()
    st.title("Plugins")
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
        st.error(f"**{row['kind']}/{row['id']}** ({row['status']}, {row['origin']}): {row['error']}")

    st.subheader("Capability graph")
    st.caption("A line joins two plugins that work together. Plugins with missing packages have a red ring.")
    network_tab, dot_tab, text_tab = st.tabs(["Network", "Graphviz", "Why not"])
    with network_tab:
        st.plotly_chart(charts.capability_network(graph.to_json()), key="capability-network", width="stretch")
    with dot_tab:
        st.graphviz_chart(graph.to_dot(), width="stretch")
    with text_tab:
        st.code(graph.to_text(), language="text")

    st.subheader("Details")
    keys = sorted(snapshot.bundles)
    if not keys:
        return
    pick = st.selectbox("Bundle", keys, format_func=lambda k: f"{k[0]} / {k[1]}", key="plugin_detail")
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
            yaml.safe_dump(manifest.model_dump(mode="json", exclude_defaults=True), sort_keys=False),
            language="yaml",
        )


main()
