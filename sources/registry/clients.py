"""What the partner registry holds: clients (their keys only as hashes), their
trusted documents, a gateway's snapshot of them, and the rules for names, rate
limits, caps on open subscriptions and key hashes.

A key is stored only as HMAC-SHA256(pepper, key): a fast keyed hash, since it is
checked on every request, and enough for 256-bit random keys (no dictionary to
guess from). ``pepper_id`` fingerprints the pepper, so a gateway started with
another pepper can say why the keys no longer work.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sources.errors import ConfigError

__all__ = [
    "KEY_PEPPER_ENV",
    "KEY_PREFIX",
    "MIN_PEPPER_LENGTH",
    "Client",
    "Document",
    "ManifestDocument",
    "PushSummary",
    "Snapshot",
    "key_hash",
    "pepper_id",
    "sha256_hex",
    "validate_client_name",
    "validate_max_subscriptions",
    "validate_rate_limit",
]

KEY_PEPPER_ENV = "PASSERELLE_KEY_PEPPER"
KEY_PREFIX = "psk_"
MIN_PEPPER_LENGTH = 32
# As source ids (sources/registry/definition.py): safe in logs, URLs and metric labels.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True, slots=True)
class ManifestDocument:
    """One document of a manifest, checked: its id, text, and its (first) operation."""

    id: str
    body: str
    operation_name: str | None
    operation_type: str

    @property
    def body_sha256(self) -> str:
        return sha256_hex(self.body)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    """A partner client. Its key is never kept: only ``key_hash``."""

    name: str
    persisted_only: bool = False
    log_only: bool = False
    allow_introspection: bool = False
    operator: bool = False
    rate_limit_rps: float | None = None
    # Its own cap on open subscriptions (None: the gateway's per-key default).
    max_subscriptions: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revoked_at: datetime | None = None
    key_hash: str = field(default="", repr=False)
    pepper_id: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def flags(self) -> tuple[str, ...]:
        """Its options as the command line spells them, e.g. ``("persisted-only",)``."""
        named = (
            ("persisted-only", self.persisted_only),
            ("log-only", self.log_only),
            ("allow-introspection", self.allow_introspection),
            ("operator", self.operator),
        )
        return tuple(name for name, on in named if on)


@dataclass(frozen=True, slots=True)
class Document:
    """A trusted document registered for one client."""

    client_name: str
    id: str
    body: str
    body_sha256: str
    operation_name: str | None
    operation_type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PushSummary:
    added: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a gateway checks requests against, read at one revision."""

    revision: int
    pepper: bytes = field(repr=False)
    pepper_id: str
    clients_by_key_hash: dict[str, Client]
    # client name -> document id -> document, and client name -> body SHA-256 -> document.
    documents: dict[str, dict[str, Document]]
    documents_by_body: dict[str, dict[str, Document]]

    def client_for_key(self, key: str) -> Client | None:
        """The client whose key this is (revoked or not), or None."""
        return self.clients_by_key_hash.get(key_hash(self.pepper, key))


def validate_client_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            "a client name must be 1 to 63 characters of lowercase letters, digits, '_' or '-', "
            f"starting with a letter or digit, got {name!r}"
        )
    return name


MIN_RATE_LIMIT = 0.01  # one request every 100 s


def validate_rate_limit(value: float | None) -> float | None:
    if value is not None and not (MIN_RATE_LIMIT <= value < float("inf")):
        raise ConfigError(
            f"a rate limit must be a number of requests/s of at least {MIN_RATE_LIMIT}, "
            f"got {value!r}"
        )
    return value


def validate_max_subscriptions(value: int | None) -> int | None:
    if value is not None and not (isinstance(value, int) and value >= 1):
        raise ConfigError(
            f"a cap on open subscriptions must be a whole number, at least 1, got {value!r}"
        )
    return value


def key_hash(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def pepper_id(pepper: bytes) -> str:
    return hmac.new(pepper, b"passerelle key pepper id", hashlib.sha256).hexdigest()[:16]
