"""The key registry and the signature checks, without a broker: each reason, each edge of validity."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from readiness.contracts.signing import (
    KeyRegistry,
    Signer,
    SigningError,
    check_binding,
    check_signature,
    header_map,
    key_province,
    signer_for,
)
from readiness.transforms.signatures import verdict

T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)
MS = 1000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * MS)


@pytest.fixture()
def registry(tmp_path):
    return KeyRegistry(tmp_path / "registry.json"), tmp_path / "private"


def test_issue_registers_the_public_key_and_writes_the_private_key_for_the_province(registry):
    reg, private = registry
    key, path = reg.issue("38", private, T0, valid_days=10)
    assert path.parent == private / "38" and path.name == f"{key.key_id}.pem"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert key_province(key.key_id) == "38" and key.valid_from == T0 and key.valid_to == T0 + timedelta(days=10)
    assert reg.load() == {key.key_id: key}
    assert "PRIVATE" not in reg.path.read_text()  # the registry holds public keys only


def test_signatures_verify_and_refuse(registry):
    reg, private = registry
    key, path = reg.issue("38", private, T0)
    snapshot = reg.snapshot()
    signer = Signer.from_file(path)
    value = b"\xc3\x01report bytes"
    headers = header_map(signer.headers("38", value))
    assert check_signature(snapshot, headers, value) == (None, None, key.key_id)
    assert check_signature(snapshot, headers, value[:-1] + b"X")[0] == "bad_signature"
    assert check_signature(snapshot, {}, value)[0] == "unsigned"
    assert check_signature(snapshot, {**headers, "readiness-key-id": b"p38-x"}, value)[0] == "unknown_key"
    assert check_signature(snapshot, {**headers, "readiness-signature-alg": b"rsa"}, value)[0] == "bad_signature"
    with pytest.raises(SigningError, match="does not sign a report of province 01"):
        signer.headers("01", value)


def test_binding_checks_the_province_the_kafka_key_and_validity_at_receipt(registry):
    reg, private = registry
    key, _ = reg.issue("38", private, T0, valid_days=30)
    snap = reg.snapshot()
    kid = key.key_id
    assert check_binding(snap, kid, "38", "38", ms(T0)) == (None, None)
    assert check_binding(snap, kid, "01", "01", ms(T0))[0] == "key_not_for_province"
    assert check_binding(snap, kid, "38", "01", ms(T0))[0] == "key_mismatch"
    assert check_binding(snap, kid, "38", "38", ms(T0) - 1)[0] == "key_not_yet_valid"
    assert check_binding(snap, kid, "38", "38", ms(T0 + timedelta(days=30)))[0] is None  # the last instant
    assert check_binding(snap, kid, "38", "38", ms(T0 + timedelta(days=30)) + 1)[0] == "key_expired"
    reg.revoke(kid, T0 + timedelta(days=2))
    snap = reg.snapshot()
    assert check_binding(snap, kid, "38", "38", ms(T0 + timedelta(days=2)) - 1)[0] is None  # received before
    assert check_binding(snap, kid, "38", "38", ms(T0 + timedelta(days=2)))[0] == "key_revoked"


def test_rotation_keeps_the_old_key_for_the_overlap_and_signs_with_the_new(registry):
    reg, private = registry
    old, _ = reg.issue("38", private, T0)
    new, _ = reg.rotate("38", private, T0 + timedelta(days=100))
    keys = reg.load()
    assert keys[old.key_id].valid_to == T0 + timedelta(days=107)
    assert keys[new.key_id].valid_from == T0 + timedelta(days=100)
    assert signer_for("38", private).key_id in {old.key_id, new.key_id}


def test_a_signature_failure_wins_over_the_decoder(registry):
    reg, private = registry
    key, path = reg.issue("38", private, T0)
    value = b"\xc3\x01body"
    headers = list(Signer.from_file(path).headers("38", value))
    tampered = value + b"!"
    assert verdict(reg.snapshot(), tampered, headers, None, "38", ms(T0))[0] == "bad_signature"
    assert verdict(reg.snapshot(), value, headers, None, "38", ms(T0)) == (None, None, key.key_id)  # decode error stands
    assert verdict(reg.snapshot(), value, headers, "38", "38", ms(T0)) == (None, None, key.key_id)
    assert verdict(reg.snapshot(), value, headers, "01", "01", ms(T0))[0] == "key_not_for_province"


def test_signer_for_without_a_key_says_how_to_get_one(tmp_path):
    with pytest.raises(SigningError, match="readiness keys issue 38"):
        signer_for("38", tmp_path)
