"""Signed reports: each event's exact encoded bytes are signed with its province's Ed25519 key.

The signature, the key id and the algorithm travel in Kafka headers (:data:`HEADER_SIGNATURE`,
:data:`HEADER_KEY_ID`, :data:`HEADER_ALGORITHM`); the value stays the plain Avro single-object
encoding, so a reader that ignores the headers still decodes it.

The ministry's key registry (a JSON file, :class:`KeyRegistry`) holds per key: the province code,
the key id, the public key, valid from, valid to and revoked at. A message is accepted only if its
key is registered for the report's province, was valid at the broker's receipt time and not
revoked before it, and the signature matches the bytes (:func:`verify_message`). A report signed
with a key that is revoked later, but received before the revocation, stays valid.

Private keys never enter the repository: the ministry issues a key pair (``readiness keys issue``)
and hands the private key file to the province; this machine keeps the ones it issued under
``<var_dir>/keys/provinces/<code>/`` for the simulator and the tests.
"""
from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from readiness.ops.locks import file_lock
from readiness.ops.secrets import write_private

ALGORITHM = "ed25519"
HEADER_SIGNATURE = "readiness-signature"
HEADER_KEY_ID = "readiness-key-id"
HEADER_ALGORITHM = "readiness-signature-alg"
# Why a message was refused before bronze (besides the decode errors of the encoding).
REASONS = ("unsigned", "unknown_key", "bad_signature", "key_not_for_province", "key_mismatch",
           "key_not_yet_valid", "key_expired", "key_revoked")
DEFAULT_VALID_DAYS = 730
ROTATION_OVERLAP = timedelta(days=7)


class SigningError(ValueError):
    """A key cannot be issued, found or used (one line, for the CLI)."""


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise SigningError(f"time {moment.isoformat()} has no time zone")
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


def validity(valid_from, valid_to, revoked_at, at) -> str | None:
    """The one rule of a key's validity at receipt time ``at`` (datetimes, or epoch milliseconds):
    None if valid, else ``key_revoked`` (revoked at or before ``at``), ``key_not_yet_valid`` or
    ``key_expired`` (after ``valid_to``, which is inclusive)."""
    if revoked_at is not None and revoked_at <= at:
        return "key_revoked"
    if at < valid_from:
        return "key_not_yet_valid"
    if valid_to is not None and at > valid_to:
        return "key_expired"
    return None


@dataclass(frozen=True)
class RegisteredKey:
    """One public key of the registry. Times are UTC; ``valid_to`` and ``revoked_at`` may be open."""

    key_id: str
    province_code: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    valid_from: datetime
    valid_to: datetime | None = None
    revoked_at: datetime | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(valid_from=_iso(self.valid_from), valid_to=_iso(self.valid_to), revoked_at=_iso(self.revoked_at))
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> "RegisteredKey":
        return cls(str(data["key_id"]), str(data["province_code"]), str(data["public_key"]),
                   _parse(data["valid_from"]), _parse(data.get("valid_to")), _parse(data.get("revoked_at")))

    def status(self, at: datetime) -> str | None:
        """None when a message received at ``at`` may be signed with this key, else the reason."""
        return validity(self.valid_from, self.valid_to, self.revoked_at, at)


class KeyRegistry:
    """The ministry's key registry, a JSON file: ``{"keys": [RegisteredKey, ...]}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, RegisteredKey]:
        if not self.path.is_file():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {k["key_id"]: RegisteredKey.from_json(k) for k in data.get("keys", [])}

    def _save(self, keys: Mapping[str, RegisteredKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"keys": [k.to_json() for k in sorted(keys.values(), key=lambda k: (
            k.province_code, k.valid_from, k.key_id))]}, indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def _locked(self):
        return file_lock(self.path.with_name(f".{self.path.name}.lock"))

    def issue(self, province_code: str, private_dir: Path, valid_from: datetime | None = None,
              valid_days: int = DEFAULT_VALID_DAYS) -> tuple[RegisteredKey, Path]:
        """A new key pair for the province: the public key registered, the private key written to
        ``<private_dir>/<province>/<key_id>.pem`` (0600) for the province."""
        start = _utc(valid_from) or datetime.now(timezone.utc)
        private = Ed25519PrivateKey.generate()
        key_id = f"p{province_code}-{start:%Y%m%d}-{secrets.token_hex(4)}"
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        key = RegisteredKey(key_id, province_code, base64.b64encode(public).decode(), start,
                            start + timedelta(days=valid_days))
        path = write_private(Path(private_dir) / province_code / f"{key_id}.pem", private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        with self._locked():
            keys = self.load()
            keys[key_id] = key
            self._save(keys)
        return key, path

    def rotate(self, province_code: str, private_dir: Path, at: datetime | None = None,
               overlap: timedelta = ROTATION_OVERLAP) -> tuple[RegisteredKey, Path]:
        """Issue a new key from ``at``; the province's current keys stay valid ``overlap`` longer
        (reports signed under them in flight are still accepted), then expire."""
        moment = _utc(at) or datetime.now(timezone.utc)
        new, path = self.issue(province_code, private_dir, moment)
        with self._locked():
            keys = self.load()
            for key_id, key in list(keys.items()):
                if key.province_code == province_code and key_id != new.key_id and key.status(moment) is None:
                    end = moment + overlap
                    keys[key_id] = replace(key, valid_to=min(key.valid_to, end) if key.valid_to else end)
            self._save(keys)
        return new, path

    def revoke(self, key_id: str, at: datetime | None = None) -> RegisteredKey:
        """Revoke a key from ``at`` (default now): messages received from then on are refused."""
        with self._locked():
            keys = self.load()
            if key_id not in keys:
                raise SigningError(f"no key {key_id!r} in {self.path}")
            keys[key_id] = replace(keys[key_id], revoked_at=_utc(at) or datetime.now(timezone.utc))
            self._save(keys)
            return keys[key_id]

    def snapshot(self) -> dict[str, tuple[str, bytes, int, int | None, int | None]]:
        """``key_id -> (province, public key, valid_from_ms, valid_to_ms, revoked_at_ms)``: a small,
        picklable copy for the ingest's decoders."""
        def ms(moment: datetime | None) -> int | None:
            return None if moment is None else int(moment.timestamp() * 1000)

        return {k.key_id: (k.province_code, base64.b64decode(k.public_key), ms(k.valid_from), ms(k.valid_to),
                           ms(k.revoked_at)) for k in self.load().values()}


class Signer:
    """Signs a province's events with its private key (refusing another province's reports)."""

    def __init__(self, province_code: str, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self.province_code, self.key_id, self._key = province_code, key_id, private_key

    @classmethod
    def from_file(cls, path: Path) -> "Signer":
        """The key in ``path``, named ``<key id>.pem``; the key id (``p38-...``) names its province."""
        path = Path(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise SigningError(f"{path}: cannot read the signing key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningError(f"{path}: not an Ed25519 private key")
        province = key_province(path.stem)
        if province is None:
            raise SigningError(f"{path}: the file name is not a key id of the form p<province>-<date>-<hex>.pem")
        return cls(province, path.stem, key)

    def headers(self, province_code: str, value: bytes) -> list[tuple[str, bytes]]:
        """The signature headers of one encoded event of ``province_code``."""
        if province_code != self.province_code:
            raise SigningError(f"the key {self.key_id} of province {self.province_code} does not sign a report "
                               f"of province {province_code}")
        return [(HEADER_SIGNATURE, self._key.sign(value)), (HEADER_KEY_ID, self.key_id.encode()),
                (HEADER_ALGORITHM, ALGORITHM.encode())]


def key_province(key_id: str) -> str | None:
    """The province code a key id was issued to (``p38-20260101-ab12cd34`` -> ``38``)."""
    head = key_id.split("-", 1)[0]
    return head[1:] if head.startswith("p") and head[1:].isdigit() else None


def signer_for(province_code: str, private_dir: Path, key_file: Path | None = None) -> Signer:
    """The province's signer: ``key_file`` if given (it must be the province's), else its newest
    key under ``private_dir/<code>/``."""
    if key_file is not None:
        signer = Signer.from_file(key_file)
        if signer.province_code != province_code:
            raise SigningError(f"the signing key {signer.key_id} is province {signer.province_code}'s: it does not "
                               f"sign a report of province {province_code}")
        return signer
    candidates = sorted((Path(private_dir) / province_code).glob("*.pem"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise SigningError(f"no signing key for province {province_code} (looked in {Path(private_dir) / province_code}); "
                           "the ministry issues one: readiness keys issue " + province_code)
    return Signer.from_file(candidates[-1])


def header_map(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, bytes]:
    return {k: v for k, v in (headers or []) if v is not None}


def check_signature(snapshot: Mapping[str, Sequence], headers: Mapping[str, bytes], value: bytes | None) -> \
        tuple[str | None, str | None, str | None]:
    """Before decoding: ``(reason or None, detail, key_id)`` for the signature of ``value``."""
    signature, key_id = headers.get(HEADER_SIGNATURE), headers.get(HEADER_KEY_ID)
    if not signature or not key_id:
        return "unsigned", "no signature or key id header", None
    kid = key_id.decode("utf-8", "replace")
    entry = snapshot.get(kid)
    if entry is None:
        return "unknown_key", f"key id {kid!r} is not in the registry", kid
    algorithm = headers.get(HEADER_ALGORITHM, ALGORITHM.encode()).decode("utf-8", "replace")
    if algorithm != ALGORITHM:
        return "bad_signature", f"algorithm {algorithm!r} is not {ALGORITHM}", kid
    try:
        Ed25519PublicKey.from_public_bytes(bytes(entry[1])).verify(bytes(signature), bytes(value or b""))
    except (InvalidSignature, ValueError):
        return "bad_signature", f"the signature does not match the bytes under key {kid}", kid
    return None, None, kid


def check_binding(snapshot: Mapping[str, Sequence], key_id: str, province_code: str, kafka_key: str | None,
                  received_ms: int) -> tuple[str | None, str | None]:
    """After decoding: the key belongs to the report's province, the Kafka key is the province
    code, and the key was valid at the broker's receipt time."""
    owner, _, valid_from, valid_to, revoked_at = snapshot[key_id]
    if owner != province_code:
        return "key_not_for_province", f"key {key_id} is province {owner}'s, the report is province {province_code}'s"
    if kafka_key != province_code:
        return "key_mismatch", f"Kafka key {kafka_key!r} is not the report's province code {province_code!r}"
    reason = validity(valid_from, valid_to, revoked_at, received_ms)
    if reason is None:
        return None, None
    if reason == "key_revoked":
        return reason, f"key {key_id} was revoked before the message was received"
    if reason == "key_not_yet_valid":
        return reason, f"key {key_id} is not valid before {_iso(_ms(valid_from))}"
    return reason, f"key {key_id} expired at {_iso(_ms(valid_to))}"


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
