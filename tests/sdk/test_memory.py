"""sdk.data.memory: a finished pass hands back the mapped cache pages and the freed heap."""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import pytest

from sdk.data.memory import release_free_heap, release_mapped_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
MB = 2**20


def mapped_mb(path: Path) -> float:
    """Resident MB of this process's mappings of `path` (from /proc/self/smaps)."""
    total, current = 0, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            current = fields[5] if len(fields) > 5 else None
        elif fields[0] == "Rss:" and current == str(path):
            total += int(fields[1])
    return total / 1024


def anon_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if "RssAnon" in x)
    return int(line.split()[1]) / 1024


def test_pages_read_from_a_cache_file_are_handed_back_and_read_again_intact(tmp_path):
    path = tmp_path / "split.arrow"
    data = bytes(range(256)) * (16 * MB // 256)
    path.write_bytes(data)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as view:
        assert view[:: mmap.PAGESIZE].count(0) > 0  # touches every page
        assert mapped_mb(path) > 15
        released = release_mapped_pages(tmp_path)
        assert released >= 16 * MB
        assert mapped_mb(path) < 1
        assert view[:] == data  # a later read faults the same bytes back in


def test_mappings_outside_the_folder_and_writable_ones_are_left_alone(tmp_path):
    inside, outside = tmp_path / "cache", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (outside / "data.bin").write_bytes(b"x" * 4 * MB)
    (inside / "scratch.bin").write_bytes(b"y" * 4 * MB)
    with (
        (outside / "data.bin").open("rb") as other,
        mmap.mmap(other.fileno(), 0, prot=mmap.PROT_READ) as read_only,
        (inside / "scratch.bin").open("r+b") as mine,
        mmap.mmap(mine.fileno(), 0) as writable,
    ):
        assert read_only[:: mmap.PAGESIZE].count(b"x"[0]) and writable[:: mmap.PAGESIZE]
        assert release_mapped_pages(inside) == 0  # a writable mapping may hold unsaved bytes
        assert mapped_mb(outside / "data.bin") > 3


def test_freed_heap_between_live_blocks_is_returned_to_the_system():
    blocks = [bytearray(2048) for _ in range(100_000)]  # from the C heap, not pymalloc
    kept = blocks[::10]  # live blocks every 20 KB: the heap cannot shrink from its top
    del blocks
    before = anon_mb()
    release_free_heap()
    assert before - anon_mb() > 50, "glibc kept the freed blocks' pages"
    assert len(kept) == 10_000
