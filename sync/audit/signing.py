"""Signed checkpoints: a worker's Ed25519 key vouches for a chain head, so rewriting a chain
needs that key, not only write access to the database.

A :class:`Checkpoint` states "agency A's chain reached seq N with hash H at time T", signed by
the key ``key_id`` (the first 16 hex digits of SHA-256 of the raw public key). Two kinds: a
``head`` (the last entry of a written batch) and a ``cut`` (where ``govsync audit prune`` cut
the chain; entries up to it were deleted, the chain goes on from its hash). The private key
stays outside the audit database, in a file only the worker reads; verifiers hold a file of
trusted public keys (PEM, one or more ``PUBLIC KEY`` blocks).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sync.errors import ConfigError

STATEMENT_VERSION = 1
KINDS = ("head", "cut")
_PEM_END = "-----END PUBLIC KEY-----"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement about one agency's chain; ``timestamp_token`` is an RFC 3161 token
    over the same statement, when a time-stamping authority was asked."""

    kind: str
    agency: str
    seq: int
    head: bytes
    at: datetime
    key_id: str
    signature: bytes
    timestamp_token: bytes | None = None

    def statement(self) -> bytes:
        return statement(self.kind, self.agency, self.seq, self.head, self.at, self.key_id)

    def stamped(self, token: bytes) -> Checkpoint:
        return replace(self, timestamp_token=token)

    def __str__(self) -> str:
        return f"{self.kind} {self.agency}:{self.seq}:{self.head.hex()} by key {self.key_id}"


def statement(kind: str, agency: str, seq: int, head: bytes, at: datetime, key_id: str) -> bytes:
    """The bytes a key signs: deterministic JSON, versioned and labelled so a signature over
    a checkpoint can never be taken for a signature over anything else."""
    if kind not in KINDS:
        raise ValueError(f"a checkpoint is one of {', '.join(KINDS)}, not {kind!r}")
    document = {
        "govsync": "audit-checkpoint",
        "v": STATEMENT_VERSION,
        "kind": kind,
        "agency": agency,
        "seq": seq,
        "head": head.hex(),
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "key": key_id,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """A worker's signing key: its identity in the audit."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id_of(key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """A PEM (PKCS#8) Ed25519 private key, as ``govsync audit keygen`` or
        ``openssl genpkey -algorithm ed25519`` writes it."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"audit signing key {path}: cannot be read: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"audit signing key {path}: not an Ed25519 private key")
        return cls(key)

    @classmethod
    def generate(cls, path: Path) -> Signer:
        """A new key written to ``path`` (readable by its owner only); refuses to overwrite."""
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        return cls(key)

    def public_pem(self) -> str:
        pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode("ascii")

    def sign(self, kind: str, agency: str, seq: int, head: bytes, at: datetime) -> Checkpoint:
        signature = self._key.sign(statement(kind, agency, seq, head, at, self.key_id))
        return Checkpoint(kind, agency, seq, head, at, self.key_id, signature)


class TrustedKeys:
    """The public keys whose signatures a verifier accepts, by key id."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self.keys = dict(keys)

    @classmethod
    def from_file(cls, path: Path) -> TrustedKeys:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"trusted audit keys {path}: cannot be read: {exc}") from None
        return cls.from_pem(text, where=str(path))

    @classmethod
    def from_pem(cls, text: str, where: str = "trusted audit keys") -> TrustedKeys:
        keys: dict[str, Ed25519PublicKey] = {}
        for block in text.split(_PEM_END)[:-1]:
            try:
                key = serialization.load_pem_public_key((block + _PEM_END).strip().encode())
            except ValueError as exc:
                raise ConfigError(f"{where}: a PUBLIC KEY block cannot be read: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"{where}: every key must be an Ed25519 public key")
            keys[key_id_of(key)] = key
        if not keys:
            raise ConfigError(f"{where}: no PEM public key in it")
        return cls(keys)

    def problem(self, checkpoint: Checkpoint) -> str | None:
        """None when a trusted key signed the checkpoint; otherwise what is wrong."""
        key = self.keys.get(checkpoint.key_id)
        if key is None:
            return f"signed by key {checkpoint.key_id!r}, which is not a trusted key"
        try:
            key.verify(checkpoint.signature, checkpoint.statement())
        except (InvalidSignature, ValueError):
            return (
                f"the signature by key {checkpoint.key_id} does not match (rewritten without "
                "the key)"
            )
        return None
