"""Who a changed field reaches: for a topic's field, each subscription of the federation
manifest that receives it (in clear or transformed) or filters rows on it, with the agency,
the purpose and the legal basis."""

from __future__ import annotations

from dataclasses import dataclass

from sync.policy import Manifest


@dataclass(frozen=True, slots=True)
class Receipt:
    agency: str
    agency_name: str
    topic: str
    purpose: str
    legal_basis: str
    how: str  # "in clear", the transform applied, or "row filter only: <reason>"


def receipts(manifest: Manifest, topic: str, field: str) -> list[Receipt]:
    """Every subscription to ``topic`` that receives ``field`` or filters on it."""
    names = {a.code: a.name for a in manifest.agencies}
    out = []
    for s in manifest.subscriptions:
        if s.topic != topic:
            continue
        if field in s.fields:
            transform = s.transforms.get(field)
            how = "in clear" if transform is None else transform.describe()
        elif field in s.filter_only:
            how = f"row filter only: {s.filter_only[field]}"
        else:
            continue
        out.append(
            Receipt(s.agency, names.get(s.agency, s.agency), topic, s.purpose, s.legal_basis, how)
        )
    return out
