"""peftlab-bitfit: a peftlab technique shipped as a pip package.

The entry point `peftlab.techniques: bitfit = peftlab_bitfit:BUNDLE_DIR` names
the bundle folder; peftlab reads its plugin.yaml and imports technique.py only
when the technique is used, so importing this package costs nothing.
"""

from pathlib import Path

BUNDLE_DIR = str(Path(__file__).resolve().parent / "bundle")

__all__ = ["BUNDLE_DIR"]
