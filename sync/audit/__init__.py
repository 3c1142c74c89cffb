"""The disclosure audit: every record applied to a subscriber, logged in a tamper-evident,
append-only store owned by the federation operator (what it guarantees against whom:
``docs/privacy.md``).

- :mod:`.disclosure`: what one applied record disclosed (:class:`Disclosure`), derived from
  the change before and after projection by :func:`disclosures_of`; pure.
- :mod:`.signing`: a worker's Ed25519 key, signed checkpoints, trusted keys; pure.
- :mod:`.chain`: canonical bytes, the per-agency SHA-256 chain and its verification; pure.
- :mod:`.schema`: the ``govsync_audit`` tables and triggers; :mod:`.roles`: owner, writer
  and reader roles with row-level security.
- :mod:`.trail`: :class:`AuditTrail`, the processor's batched, idempotent, signing writer.
- :mod:`.checkpoints` and :mod:`.timestamp`: signed heads published to Kafka and stamped by
  an RFC 3161 authority, read back as anchors.
- :mod:`.reader`: the operator's reads: walk a chain, its heads, one person's disclosures;
  :mod:`.report`: the data protection officer's report.
- :mod:`.prune`: retention: entries kept at least 12 months (Decree 53/2022), then cut at a
  signed checkpoint.
"""

from sync.audit.chain import Break, ChainWalk, Entry, Head, canonical, extend, verify_entries
from sync.audit.disclosure import (
    Basis,
    Disclosure,
    Grounds,
    audit_event_id,
    disclosures_of,
    subject_kind,
    subject_text,
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
    "subject_kind",
    "subject_text",
    "subjects_of",
    "verify_entries",
]
