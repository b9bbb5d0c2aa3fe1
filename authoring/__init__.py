"""Tools for bundle authors: validate, scaffold, test helpers and the generated reference."""
