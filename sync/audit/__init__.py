"""The disclosure audit: every record applied to a subscriber, logged in a tamper-evident,
append-only store owned by the federation operator.

- :mod:`.disclosure`: what one applied record disclosed (:class:`Disclosure`), derived from
  the change before and after projection by :func:`disclosures_of`; pure.
- :mod:`.chain`: canonical bytes, the per-agency SHA-256 chain and its verification; pure.
- :mod:`.schema`: the ``govsync_audit`` tables, triggers and grants.
- :mod:`.trail`: :class:`AuditTrail`, the processor's batched, idempotent writer (async).
- :mod:`.reader`: the operator's reads: walk a chain, its heads, one person's disclosures.

Entries are kept at least 12 months (Law 91/2025/QH15 on personal data protection); nothing in
govsync deletes them.
"""

from sync.audit.chain import Break, ChainWalk, Entry, Head, canonical, extend, verify_entries
from sync.audit.disclosure import (
    Basis,
    Disclosure,
    Grounds,
    audit_event_id,
    disclosures_of,
    subjects_of,
)
from sync.audit.trail import AuditTrail

__all__ = [
    "AuditTrail",
    "Basis",
    "Break",
    "ChainWalk",
    "Disclosure",
    "Entry",
    "Grounds",
    "Head",
    "audit_event_id",
    "canonical",
    "disclosures_of",
    "extend",
    "subjects_of",
    "verify_entries",
]
