"""A run's saved weights are checked before they are loaded: safetensors only, intact.

Pickle files (`adapter_model.bin`, `pytorch_model.bin`) can run code when loaded, and
peft would load one when no safetensors file sits beside it; a truncated safetensors
file makes the loader raise from deep inside. Both are refused here with one line
naming the file.
"""

from __future__ import annotations

from pathlib import Path

from kernel.errors import RunError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def check_saved_weights(folder: Path) -> None:
    """Raise RunError for a pickle weights file or a damaged safetensors file in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # a technique that saves nothing, or an unfinished run: its loader says so
    for path in sorted(folder.iterdir()):
        if path.suffix in PICKLE_SUFFIXES and path.is_file():
            raise RunError(
                "a pickle weights file; peftlab loads weights from .safetensors only "
                "(convert it with safetensors.torch.save_file)",
                path=path,
            )
        if path.suffix == ".safetensors":
            problem = safetensors_problem(path)
            if problem:
                raise RunError(f"damaged weights file: {problem}", path=path)


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file cannot be read (its header and its size), or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            tensors = list(handle.keys())
            for name in tensors:  # the header's offsets must fit the file: reading checks them
                handle.get_slice(name)
    except Exception as exc:  # safetensors raises its own SafetensorError and others
        return str(exc).splitlines()[0][:200] or type(exc).__name__
    if not tensors:
        return "it holds no tensors"
    return None
