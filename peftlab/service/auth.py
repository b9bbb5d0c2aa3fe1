"""The service's bearer token: required unless the service listens on loopback only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_FILE = "service-token"


def needs_token(host: str) -> bool:
    return host not in LOOPBACK_HOSTS


def load_or_create_token(data_dir: Path) -> str:
    """The token stored in peftlab's data folder (made on first start, mode 0600)."""
    path = data_dir / TOKEN_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip(), token)
