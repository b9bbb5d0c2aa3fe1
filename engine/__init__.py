"""The engine: what turns recipes and run folders into trained models and back.

It sits between the faces (CLI, Streamlit app, Python API) and the SDK: it starts
and stops training processes, loads a run's plugins, rebuilds trained models,
merges and combines adapters and builds run reports. See docs/architecture.md.
"""
