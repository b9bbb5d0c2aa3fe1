"""docs/api.md's generated reference matches the code's docstrings and routes."""

from __future__ import annotations

from peftlab import reference


def test_api_reference_is_up_to_date() -> None:
    assert reference.main(["--check"]) == 0, "run: python -m peftlab.reference --write"


def test_the_reference_names_every_public_call_and_route() -> None:
    text = reference.render()
    for name in (
        "peftlab.train(",
        "peftlab.compare(",
        "Run.predict(",
        "Run.export(",
        "Run.metrics",
    ):
        assert name in text
    assert "| POST | `/runs` |" in text and "| GET | `/runs/{run_id}/adapter.zip` |" in text
