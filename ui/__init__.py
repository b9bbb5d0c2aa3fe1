"""Every face a person uses: the `peftlab` command line and the Streamlit app."""
