"""`sdk.reference` keeps working: the authoring tools moved to `authoring.reference` (they sit above the
engine; the SDK core imports only the kernel's manifest and param types)."""

import authoring.reference as _moved

# every name, private ones too: code written against the old module keeps working
globals().update({k: v for k, v in vars(_moved).items() if not k.startswith("__")})
__all__ = [k for k in vars(_moved) if not k.startswith("_")]  # noqa: PLE0605

if __name__ == "__main__":
    import sys

    from authoring.reference import main

    sys.exit(main())
