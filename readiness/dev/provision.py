"""What the local deployment provisions for the provinces it plays: a signing key each.

On a real deployment the ministry issues each province its key (``readiness keys issue``) and the
province keeps the private key; here one machine plays all 34 provinces (and the former 63), so
it issues them all once, valid from 2020, into the registry the ingest reads.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from readiness.contracts.signing import KeyRegistry
from readiness.domain.reference import provinces
from readiness.settings import Settings

DEV_KEYS_VALID_FROM = datetime(2020, 1, 1, tzinfo=timezone.utc)
DEV_KEYS_VALID_DAYS = 20 * 365


def shared_deployment_files(var_dir: Path) -> dict[str, str]:
    """Settings overrides that pin the CA, the principals' passwords and the key registry to
    ``var_dir``, so settings later derived with another var dir (a test's, a benchmark's) still
    connect to the broker and sign."""
    return {"kafka_ca_file": str(var_dir / "pki" / "ca.pem"),
            "kafka_credentials_dir": str(var_dir / "secrets" / "kafka"),
            "key_registry_file": str(var_dir / "keys" / "registry.json")}


def ensure_province_keys(settings: Settings) -> int:
    """Issue a signing key to every province code that has none on this machine; returns how many."""
    registry = KeyRegistry(settings.key_registry)
    registered = {k.province_code for k in registry.load().values()}
    issued = 0
    for code in dict.fromkeys(p.code for p in provinces()):
        held = (settings.private_keys_dir / code).is_dir() and any((settings.private_keys_dir / code).glob("*.pem"))
        if code not in registered or not held:
            registry.issue(code, settings.private_keys_dir, DEV_KEYS_VALID_FROM, DEV_KEYS_VALID_DAYS)
            issued += 1
    return issued
