"""The Streamlit app: `peftlab ui` runs this file (streamlit run ui/app.py).

Each page is a script in ui/views/ (not pages/: that name would switch on Streamlit's
own page discovery next to st.navigation); they share the kernel through
ui/views/_shared.py, which creates it once per process with st.cache_resource.
The favicon is a file served by the app itself, so nothing is fetched from the net.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.views import _shared

HERE = Path(__file__).resolve().parent
FAVICON = HERE / "assets" / "favicon.png"

st.set_page_config(page_title="peftlab", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page(
        HERE / "views" / "train.py", title="Train", icon=":material/model_training:", default=True
    ),
    st.Page(HERE / "views" / "runs.py", title="Runs & compare", icon=":material/monitoring:"),
    st.Page(HERE / "views" / "playground.py", title="Playground", icon=":material/chat:"),
    st.Page(HERE / "views" / "data.py", title="Datasets", icon=":material/upload_file:"),
    st.Page(HERE / "views" / "plugins.py", title="Plugins", icon=":material/extension:"),
]

page = st.navigation(PAGES)
_shared.sidebar_status()
page.run()
