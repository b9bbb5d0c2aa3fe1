"""Handing back memory a finished pass no longer needs: mapped cache pages, and freed heap.

`datasets` memory-maps its Arrow files; every page a scan touches stays counted in
the process's resident set until the file is unmapped, so one pass over a 5M-row
column would add the column's size to the peak RSS. `madvise(MADV_DONTNEED)` on a
clean, file-backed mapping drops those pages from this process only (the kernel's
page cache keeps them, a later read faults them back in cheaply). Linux only; a
no-op elsewhere.

Converting and tokenizing a large file frees most of what it allocated, but glibc
keeps freed memory in its arenas (the tokenizer's worker threads each have one):
on 1M rows about 60 MB stayed resident into training. `malloc_trim` returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from pathlib import Path

_MADV_DONTNEED = 4


def release_mapped_pages(folder: Path) -> int:
    """Drop this process's resident pages of read-only mappings of files under `folder`; bytes released."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        libc = _libc()
    except OSError:
        return 0
    prefix = str(folder.resolve())
    released = 0
    for line in maps:
        fields = line.split(maxsplit=5)
        # only mappings that cannot hold unsaved writes: read-only, file-backed
        if len(fields) < 6 or not fields[5].startswith(prefix) or "w" in fields[1]:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED) == 0:
            released += end - start
    return released


def release_free_heap() -> None:
    """Return the C heap's free memory to the system (glibc's `malloc_trim`); a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = _libc().malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    # found once: find_library costs about a millisecond, and training calls this every step
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
