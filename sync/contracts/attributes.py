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

A field that identifies no person has no ``govsync.subject``.
"""

from __future__ import annotations

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


def placeholder(what_to_fill: str) -> str:
    """A placeholder that says what the person should write instead."""
    return f"{PLACEHOLDER} {what_to_fill}"


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip().startswith(PLACEHOLDER)
