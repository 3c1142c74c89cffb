"""The embedded federation's disclosure audit: least-privilege roles and signing keys.

Processors write the audit as their agency's writer role (it may append to its own chain and
read nothing else), never as the superuser, and sign each batch's chain head with their own
Ed25519 key, kept in the data directory outside the audit database. The public keys go to one
trusted-keys file that ``govsync audit verify --trusted-keys`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sync.audit.roles import provision_audit_roles
from sync.audit.signing import Signer


@dataclass(frozen=True)
class EmbeddedAudit:
    writer_dsns: dict[str, str]  # agency -> the DSN of its writer role
    reader_dsn: str  # the data protection officer's read-only role
    signing_keys: dict[str, Path]  # agency -> its processor's private key
    trusted_keys: Path  # every processor's public key


def prepare_audit(admin_dsn: str, agencies: Iterable[str], directory: Path) -> EmbeddedAudit:
    """Create the audit store and its roles, and a signing key per processor (kept across
    restarts on the same data directory)."""
    agencies = sorted(set(agencies))
    roles = provision_audit_roles(admin_dsn, agencies)
    keys_dir = directory / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys, public = {}, []
    for agency in agencies:
        path = keys_dir / f"processor-{agency}.pem"
        signer = Signer.from_file(path) if path.exists() else Signer.generate(path)
        keys[agency] = path
        public.append(signer.public_pem())
    trusted = directory / "trusted_keys.pem"
    trusted.write_text("".join(public), encoding="ascii")
    return EmbeddedAudit(dict(roles.writer_dsns), roles.reader_dsn, keys, trusted)
