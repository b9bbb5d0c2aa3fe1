"""The engine layer: starts, follows and combines runs for the CLI, the app and bench/."""
