"""Attributes of a contract's fields that a person decides, and the placeholder that marks a
decision still to be made.

``govsync schemas scaffold`` writes a contract from a table's columns, but the catalog cannot
say what a column means, how sensitive it is or whether it points at a person. Each of those
is written as a placeholder, text starting with :data:`PLACEHOLDER`, and ``govsync schemas
lint`` refuses a contract while any attribute still holds one.

``govsync.subject`` marks a field that identifies a person, with the kind of identifier it
holds (one of :data:`SUBJECT_KINDS`), so every field that points at one citizen can be found
across the contracts, whatever the field is called::

    {"name": "holder_personal_id", "type": "string", "classification": "personal",
     "govsync.subject": "personal_id", "doc": "..."}

A field that identifies no person has no ``govsync.subject``. Lint requires the attribute on
every field whose name says it identifies a person (:func:`subject_named`), and the disclosure
audit records the values of the marked fields (:func:`subject_fields`) as the people a change
is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PLACEHOLDER = "TODO:"
SUBJECT_ATTRIBUTE = "govsync.subject"
# kind -> what a field of that kind holds
SUBJECT_KINDS: dict[str, str] = {
    "personal_id": "the 12-digit personal identification number (số định danh cá nhân), "
    "also the number of the citizen identity card",
    "tax_code": "a person's tax code (mã số thuế)",
    "insurance_number": "the social insurance number (mã số bảo hiểm xã hội)",
}


# kinds whose name alone says a person: an enterprise's tax code is a tax code too, so a
# tax_code identifies a person only when the contract classifies it as personal data
_ALWAYS_A_PERSON = frozenset({"personal_id", "insurance_number"})
PERSONAL_CLASSIFICATIONS = frozenset({"personal", "sensitive_personal"})


def subject_named(name: str, classification: Any) -> str | None:
    """The kind of identifier a field's name says it holds when the field identifies a
    person: ``personal_id`` and ``*_personal_id``, ``insurance_number`` and
    ``*_insurance_number`` always; ``tax_code`` and ``*_tax_code`` when classified personal or
    sensitive_personal. None for any other field."""
    for kind in SUBJECT_KINDS:  # the field names of a kind: the kind itself or ``*_<kind>``
        named = name == kind or name.endswith(f"_{kind}")
        if named and (kind in _ALWAYS_A_PERSON or classification in PERSONAL_CLASSIFICATIONS):
            return kind
    return None


def subject_fields(*schemas: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> kind, for the top-level fields of ``schemas`` (a contract's row and key)
    that carry a valid ``govsync.subject``."""
    marked: dict[str, str] = {}
    for schema in schemas:
        for item in schema.get("fields", ()):
            kind = item.get(SUBJECT_ATTRIBUTE) if isinstance(item, Mapping) else None
            if kind in SUBJECT_KINDS:
                marked[str(item["name"])] = str(kind)
    return marked


def placeholder(what_to_fill: str) -> str:
    """A placeholder that says what the person should write instead."""
    return f"{PLACEHOLDER} {what_to_fill}"


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip().startswith(PLACEHOLDER)
