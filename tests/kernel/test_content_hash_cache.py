"""Bundle content hashes read code, stamp data; parsed manifests are cached by path, size and mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kernel import manifest_cache
from kernel.errors import ManifestError
from kernel.jobs import snapshot_bundle
from kernel.loader import HASHED_MAX_BYTES, content_hash
from kernel.manifest import load_yaml, read_manifest_data

MANIFEST = "id: echo\nkind: technique\nname: Echo\nversion: 1.0.0\napi: 1\nentry: technique:Echo\n"


def bundle(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "plugin.yaml").write_text(MANIFEST)
    (folder / "technique.py").write_text("class Echo:\n    pass\n")
    return folder


def rewrite_keeping_stamp(path: Path, data: bytes) -> None:
    """Same size, same modification time, other bytes: what only reading the file can notice."""
    stat = path.stat()
    assert len(data) == stat.st_size
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_code_is_hashed_by_content(tmp_path: Path) -> None:
    folder = bundle(tmp_path / "b")
    before = content_hash(folder)
    rewrite_keeping_stamp(folder / "technique.py", b"class Ecko:\n    pass\n")
    assert content_hash(folder) != before


def test_weights_are_stamped_not_read(tmp_path: Path) -> None:
    folder = bundle(tmp_path / "b")
    weights = folder / "weights.safetensors"
    weights.write_bytes(b"\0" * 4096)
    before = content_hash(folder)
    rewrite_keeping_stamp(weights, b"\1" * 4096)
    assert content_hash(folder) == before  # not read
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert content_hash(folder) != before  # but a new modification time is a new version


def test_a_large_file_with_a_code_suffix_is_stamped_too(tmp_path: Path) -> None:
    folder = bundle(tmp_path / "b")
    big = folder / "rows.json"
    with open(big, "wb") as handle:
        handle.truncate(HASHED_MAX_BYTES + 1)  # sparse: costs nothing to make
    before = content_hash(folder)
    with open(big, "r+b") as handle:
        stat = big.stat()
        handle.write(b"[")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert content_hash(folder) == before


def test_a_snapshot_of_a_bundle_with_weights_hashes_like_the_bundle(tmp_path: Path) -> None:
    folder = bundle(tmp_path / "b")
    (folder / "adapter.bin").write_bytes(os.urandom(2048))
    copy = snapshot_bundle(folder, tmp_path / "run" / "b")
    assert copy is not None and content_hash(copy) == content_hash(folder)


def test_the_fast_loader_still_refuses_duplicate_keys() -> None:
    import yaml

    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'params'"):
        load_yaml("params: {}\nid: x\nparams: {}\n")
    assert load_yaml("base: &b {a: 1}\nmore:\n  <<: *b\n  a: 2\n")["more"] == {"a": 2}


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PEFTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(manifest_cache, "_entries", None)
    monkeypatch.setattr(manifest_cache, "_dirty", False)
    return tmp_path / "home" / "cache" / "manifests.json"


def settled(path: Path) -> Path:
    """Back-date a file past the settle time, as any manifest not just saved is."""
    old = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(old, old))
    return path


def test_a_settled_manifest_is_served_from_the_cache_until_it_changes(
    tmp_path: Path, fresh_cache: Path
) -> None:
    path = settled(bundle(tmp_path / "b") / "plugin.yaml")
    assert read_manifest_data(path)["id"] == "echo"
    manifest_cache.save()
    assert fresh_cache.is_file()
    manifest_cache._entries = None  # a new process: only the file on disk
    rewrite_keeping_stamp(path, MANIFEST.replace("echo", "ecco").encode())
    assert read_manifest_data(path)["id"] == "echo"  # unchanged stamp: the cached parse
    path.write_text(MANIFEST.replace("echo", "other"))
    assert read_manifest_data(path)["id"] == "other"  # a new stamp: parsed again


def test_a_manifest_just_saved_is_never_cached(tmp_path: Path, fresh_cache: Path) -> None:
    path = bundle(tmp_path / "b") / "plugin.yaml"
    read_manifest_data(path)
    rewrite_keeping_stamp(path, MANIFEST.replace("echo", "ecco").encode())
    assert read_manifest_data(path)["id"] == "ecco"


def test_a_cached_manifest_that_became_invalid_yaml_is_reported(
    tmp_path: Path, fresh_cache: Path
) -> None:
    path = settled(bundle(tmp_path / "b") / "plugin.yaml")
    read_manifest_data(path)
    path.write_text("id: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        read_manifest_data(path)
