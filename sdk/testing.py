"""`sdk.testing` keeps working: the authoring tools moved to `authoring.testing` (they sit above the
engine; the SDK core imports only the kernel's manifest and param types)."""

import authoring.testing as _moved

# every name, private ones too: code written against the old module keeps working
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})
__all__ = [k for k in vars(_moved) if not k.startswith("_")]  # noqa: PLE0605
