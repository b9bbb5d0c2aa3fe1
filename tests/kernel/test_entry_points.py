"""Bundles from installed packages through stevedore entry points (a fake dist-info on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kernel.registry import describe_status
from tests.kernel.bundles import technique_manifest, write_bundle


def install_fake_distribution(site: Path, name: str, entry_points: str, module_code: str) -> None:
    """What pip would leave behind: a package and a dist-info with entry_points.txt."""
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    package = site / name
    package.mkdir()
    (package / "__init__.py").write_text(module_code)


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("peftlab_ext_")]:
        del sys.modules[name]


def test_entry_point_bundle_is_discovered(fake_site: Path, make_kernel) -> None:
    install_fake_distribution(
        fake_site,
        "peftlab_ext_echo",
        "[peftlab.techniques]\necho = peftlab_ext_echo:BUNDLE\n",
        "from pathlib import Path\nBUNDLE = Path(__file__).parent / 'bundle'\n",
    )
    write_bundle(fake_site / "peftlab_ext_echo", "bundle", technique_manifest("pkg_echo"))
    kernel = make_kernel(entry_points=True)
    bundle = kernel.get("technique", "pkg_echo")
    assert bundle.origin == "package:peftlab_ext_echo"
    assert bundle.load().__name__ == "Echo"


def test_broken_entry_point_is_reported_not_lost(
    fake_site: Path, make_kernel, tmp_path: Path
) -> None:
    install_fake_distribution(
        fake_site,
        "peftlab_ext_broken",
        "[peftlab.models]\nbroken = peftlab_ext_broken:BUNDLE\n",
        "raise ImportError('cannot import this package')\n",
    )
    write_bundle(tmp_path / "plugins", "ok", technique_manifest("ok"))
    kernel = make_kernel(tmp_path / "plugins", entry_points=True)
    assert kernel.snapshot.ids("technique") == ["ok"]
    errors = [r["error"] for r in describe_status(kernel.snapshot) if r["status"] == "broken"]
    assert any("broken = peftlab_ext_broken:BUNDLE" in e and "cannot import" in e for e in errors)


def test_entry_point_to_folder_without_manifest(fake_site: Path, make_kernel) -> None:
    install_fake_distribution(
        fake_site,
        "peftlab_ext_empty",
        "[peftlab.datasets]\nempty = peftlab_ext_empty:BUNDLE\n",
        "BUNDLE = '/nonexistent/folder'\n",
    )
    kernel = make_kernel(entry_points=True)
    errors = [r["error"] for r in describe_status(kernel.snapshot)]
    assert any("has no plugin.yaml" in e for e in errors)
