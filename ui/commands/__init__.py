"""CLI command groups, one module per topic; each imports heavy libraries lazily."""
