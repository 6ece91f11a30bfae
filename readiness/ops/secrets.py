"""Secret files the deployment generates for itself: passwords and private keys, mode 0600.

They live outside git (under ``var/`` here, a secrets mount in production) and are never printed:
callers get their content as :class:`readiness.settings.Secret` or pass the path on.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from readiness.settings import Secret


def write_private(path: Path, content: bytes) -> Path:
    """Write ``content`` readable by the owner only (the folder too), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)
    return path


def ensure_secret_file(path: Path, nbytes: int = 24) -> str:
    """The secret in ``path``, generated (URL-safe random text) when the file does not exist yet."""
    path = Path(path)
    if not path.is_file():
        write_private(path, secrets.token_urlsafe(nbytes).encode())
    return path.read_text(encoding="utf-8").strip()


def read_secret(path: Path) -> Secret:
    return Secret(Path(path).read_text(encoding="utf-8").strip())
