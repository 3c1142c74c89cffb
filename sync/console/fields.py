"""What a registered schema says about each field, for people: the row record of a subject's
schema (a value subject holds the change envelope, whose ``before`` and ``after`` carry the
row; a key subject is the row's key), its fields' types, docs, classifications and
``govsync.subject`` marks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.contracts.attributes import SUBJECT_ATTRIBUTE

ENVELOPE_ROW = ("before", "after")
_SUFFIXES = ("-value", "-key")


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: str
    doc: str
    classification: str
    subject_kind: str  # govsync.subject: which kind of identifier of a person it is, or ''
    default: str | None  # as JSON; None: no default


def topic_of(subject: str, topic_prefix: str = "") -> str:
    """The topic a ``<prefix><topic>-key|-value`` subject belongs to ('' for another name)."""
    if not subject.startswith(topic_prefix) or not subject.endswith(_SUFFIXES):
        return ""
    return subject[len(topic_prefix) :].rsplit("-", 1)[0]


def is_envelope(schema: Any) -> bool:
    return isinstance(schema, Mapping) and {f.get("name") for f in _fields(schema)} >= set(
        ENVELOPE_ROW
    )


def row_record(schema: Any) -> Mapping[str, Any] | None:
    """The record whose fields a subscriber receives: inside an envelope, the record of
    ``before``; else the schema itself when it is a record."""
    if is_envelope(schema):
        for item in _fields(schema):
            if item.get("name") == ENVELOPE_ROW[0]:
                return _record_in(item.get("type"))
        return None
    return schema if isinstance(schema, Mapping) and schema.get("type") == "record" else None


def _record_in(avro_type: Any) -> Mapping[str, Any] | None:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    for branch in branches:
        if isinstance(branch, Mapping) and branch.get("type") == "record":
            return branch
    return None


def _fields(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    fields = record.get("fields")
    return [f for f in fields if isinstance(f, Mapping)] if isinstance(fields, list) else []


def fields_of(schema: Any) -> list[FieldInfo]:
    """The row record's fields, in schema order; none for a schema that is no record."""
    record = row_record(schema)
    if record is None:
        return []
    return [
        FieldInfo(
            name=str(item.get("name", "")),
            type=type_text(item.get("type")),
            doc=str(item.get("doc", "")),
            classification=str(item.get("classification", "")),
            subject_kind=str(item.get(SUBJECT_ATTRIBUTE, "")),
            default=json.dumps(item["default"], ensure_ascii=False) if "default" in item else None,
        )
        for item in _fields(record)
    ]


def type_text(avro_type: Any) -> str:
    """An Avro type in a few words: ``null | string``, ``int (date)``, ``array of long``."""
    if isinstance(avro_type, list):
        return " | ".join(type_text(branch) for branch in avro_type)
    if isinstance(avro_type, Mapping):
        kind = avro_type.get("type")
        if "logicalType" in avro_type:
            return f"{type_text(kind)} ({avro_type['logicalType']})"
        if kind == "array":
            return f"array of {type_text(avro_type.get('items'))}"
        if kind == "map":
            return f"map of {type_text(avro_type.get('values'))}"
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {avro_type.get('name', '')}"
        return type_text(kind)
    return str(avro_type)
