"""Contract review, the pure part: what changed between two versions of a schema, in a
reviewer's words, each change classified by its :class:`Kind`.

:func:`diff` walks both schemas (the registered one and the proposed one), resolving named
types, and lists each change with a dotted field path (``address.street``; ``tags[]`` for array
items, ``labels{}`` for map values). Whether each compatibility level accepts it is
:mod:`sync.contracts.verdicts`; nothing here talks to a registry (:mod:`sync.contracts.review`).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sync.contracts.avro_types import (
    NAMED,
    PRIMITIVES,
    WIDENINGS,
    NamedTypes,
    describe,
    full_name,
    kind_of,
    logical_type,
)

# attributes compared on their own; anything else on a record or field is a "property"
RECORD_KEYS = frozenset({"type", "name", "namespace", "doc", "fields", "aliases"})
FIELD_KEYS = frozenset({"name", "type", "doc", "default", "aliases", "classification"})


class Kind(StrEnum):
    """The kinds of change :func:`diff` reports."""

    FIELD_ADDED = "field_added"
    FIELD_ADDED_WITHOUT_DEFAULT = "field_added_without_default"
    FIELD_REMOVED = "field_removed"
    FIELD_REMOVED_WITHOUT_DEFAULT = "field_removed_without_default"
    FIELD_RENAMED = "field_renamed"
    FIELDS_REORDERED = "fields_reordered"
    TYPE_WIDENED = "type_widened"
    TYPE_CHANGED = "type_changed"
    BECAME_NULLABLE = "became_nullable"
    NO_LONGER_NULLABLE = "no_longer_nullable"
    UNION_BRANCH_ADDED = "union_branch_added"
    UNION_BRANCH_REMOVED = "union_branch_removed"
    DEFAULT_CHANGED = "default_changed"
    DOC_CHANGED = "doc_changed"
    CLASSIFICATION_CHANGED = "classification_changed"
    ALIAS_ADDED = "alias_added"
    ALIAS_REMOVED = "alias_removed"
    ENUM_SYMBOLS_ADDED = "enum_symbols_added"
    ENUM_SYMBOLS_REMOVED = "enum_symbols_removed"
    RECORD_RENAMED = "record_renamed"
    NAMESPACE_CHANGED = "namespace_changed"
    PROPERTY_CHANGED = "property_changed"


@dataclass(frozen=True, slots=True)
class Change:
    """One change; ``path`` is the dotted field path, empty for the top-level schema."""

    kind: Kind
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "path": self.path, "message": self.message}


def diff(old: Mapping[str, Any] | str, new: Mapping[str, Any] | str) -> list[Change]:
    """The changes from schema ``old`` to schema ``new`` (JSON text or parsed JSON)."""
    old_schema = json.loads(old) if isinstance(old, str) else old
    new_schema = json.loads(new) if isinstance(new, str) else new
    differ = _Differ(NamedTypes(old_schema), NamedTypes(new_schema))
    differ.type(old_schema, "", new_schema, "", "")
    return differ.changes


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _short(text: Any) -> str:
    return repr(textwrap.shorten(str(text), width=70, placeholder="…"))


class _Differ:
    def __init__(self, old: NamedTypes, new: NamedTypes) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, kind: Kind, path: str, message: str) -> None:
        self.changes.append(Change(kind, path, message))

    def type(self, old: Any, old_ns: str, new: Any, new_ns: str, path: str) -> None:
        old, old_ns = self.old.resolve(old, old_ns)
        new, new_ns = self.new.resolve(new, new_ns)
        old_kind, new_kind = kind_of(old), kind_of(new)
        if "union" in (old_kind, new_kind):
            self._union(old, old_ns, new, new_ns, path)
        elif old_kind != new_kind:
            self._changed_kind(old, new, path)
        elif old_kind in PRIMITIVES:
            if logical_type(old) != logical_type(new):
                self.add(
                    Kind.TYPE_CHANGED, path, f"type changed {describe(old)} -> {describe(new)}"
                )
        elif old_kind == "record":
            self._record(old, old_ns, new, new_ns, path)
        elif old_kind == "enum":
            self._enum(old, old_ns, new, new_ns, path)
        elif old_kind == "fixed":
            self._named(old, old_ns, new, new_ns, path)
            if old.get("size") != new.get("size") or logical_type(old) != logical_type(new):
                self.add(
                    Kind.TYPE_CHANGED, path, f"type changed {describe(old)} -> {describe(new)}"
                )
        elif old_kind == "array":
            self.type(old.get("items"), old_ns, new.get("items"), new_ns, f"{path}[]")
        elif old_kind == "map":
            self.type(old.get("values"), old_ns, new.get("values"), new_ns, f"{path}{{}}")

    def _changed_kind(self, old: Any, new: Any, path: str) -> None:
        pair = (kind_of(old), kind_of(new))
        if pair in WIDENINGS:
            self.add(
                Kind.TYPE_WIDENED,
                path,
                f"type widened {describe(old)} -> {describe(new)}: the new schema reads old "
                "data, readers of the old schema cannot read the wider values",
            )
        elif pair[::-1] in WIDENINGS:
            self.add(
                Kind.TYPE_CHANGED,
                path,
                f"type narrowed {describe(old)} -> {describe(new)}: the new schema cannot read "
                "old data",
            )
        else:
            self.add(Kind.TYPE_CHANGED, path, f"type changed {describe(old)} -> {describe(new)}")

    # -- unions -----------------------------------------------------------------------------

    def _union(self, old: Any, old_ns: str, new: Any, new_ns: str, path: str) -> None:
        old_branches = old if isinstance(old, list) else [old]
        new_branches = new if isinstance(new, list) else [new]
        old_null, new_null = "null" in old_branches, "null" in new_branches
        if new_null and not old_null:
            self.add(Kind.BECAME_NULLABLE, path, f"became nullable ({describe(new)})")
        elif old_null and not new_null:
            self.add(
                Kind.NO_LONGER_NULLABLE,
                path,
                f"no longer nullable ({describe(old)} -> {describe(new)}): "
                "the new schema cannot read old nulls",
            )
        old_rest = [b for b in old_branches if b != "null"]
        new_rest = [b for b in new_branches if b != "null"]
        if len(old_rest) == 1 and len(new_rest) == 1:
            self.type(old_rest[0], old_ns, new_rest[0], new_ns, path)
            return
        old_keyed = {self._branch_key(self.old, b, old_ns): b for b in old_rest}
        new_keyed = {self._branch_key(self.new, b, new_ns): b for b in new_rest}
        for key, branch in new_keyed.items():
            if key in old_keyed:
                self.type(old_keyed[key], old_ns, branch, new_ns, path)
            else:
                self.add(Kind.UNION_BRANCH_ADDED, path, f"union branch added: {describe(branch)}")
        for key, branch in old_keyed.items():
            if key not in new_keyed:
                self.add(
                    Kind.UNION_BRANCH_REMOVED, path, f"union branch removed: {describe(branch)}"
                )

    @staticmethod
    def _branch_key(types: NamedTypes, branch: Any, namespace: str) -> str:
        """What Avro matches union branches by: the type, or a named type's short name."""
        resolved, _ = types.resolve(branch, namespace)
        kind = kind_of(resolved)
        if kind in NAMED:
            return f"{kind}:{str(resolved.get('name', '')).rpartition('.')[2]}"
        return kind

    # -- named types ------------------------------------------------------------------------

    def _named(
        self, old: Mapping[str, Any], old_ns: str, new: Mapping[str, Any], new_ns: str, path: str
    ) -> str:
        """Compare names, namespaces, docs and aliases of two named types; return a label."""
        old_full, old_space = full_name(old, old_ns)
        new_full, new_space = full_name(new, new_ns)
        old_name, new_name = old_full.rpartition(".")[2], new_full.rpartition(".")[2]
        label = f"{new.get('type')} {new_name}"
        explained: tuple[str, ...] = ()
        if old_name != new_name:
            aliased = old_full in new.get("aliases", []) or old_name in new.get("aliases", [])
            note = f" (alias {old_full!r} keeps them matching)" if aliased else ""
            explained = (old_full, old_name) if aliased else ()
            self.add(
                Kind.RECORD_RENAMED,
                path,
                f"{old.get('type')} renamed {old_name} -> {new_name}{note}",
            )
        # a namespace inherited from the enclosing record changed with it: reported there
        explicit = not path or any(
            "namespace" in d or "." in str(d.get("name")) for d in (old, new)
        )
        if old_space != new_space and explicit:
            self.add(
                Kind.NAMESPACE_CHANGED,
                path,
                f"{label}: namespace changed {old_space or '(none)'} -> {new_space or '(none)'}",
            )
        self._doc(old, new, path, f"{label}: ")
        self._aliases(old, new, path, f"{label}: ", skip=explained)
        return label

    def _record(
        self, old: Mapping[str, Any], old_ns: str, new: Mapping[str, Any], new_ns: str, path: str
    ) -> None:
        pair = (full_name(old, old_ns)[0], full_name(new, new_ns)[0])
        if pair in self._seen:
            return  # reported where the type was first met
        self._seen.add(pair)
        label = self._named(old, old_ns, new, new_ns, path)
        self._properties(old, new, path, f"{label}: ", RECORD_KEYS)
        old_fields = {f["name"]: f for f in old.get("fields", []) if isinstance(f, Mapping)}
        new_fields = {f["name"]: f for f in new.get("fields", []) if isinstance(f, Mapping)}
        namespaces = (full_name(old, old_ns)[1], full_name(new, new_ns)[1])
        matched = self._fields(old_fields, new_fields, namespaces, path)
        for name, item in old_fields.items():
            if name not in matched.values():
                self._removed(item, f"{path}.{name}" if path else name)
        old_order = [n for n in old_fields if n in matched.values()]
        new_order = [matched[n] for n in new_fields if n in matched]
        if old_order != new_order:
            self.add(
                Kind.FIELDS_REORDERED,
                path,
                f"{label}: fields reordered (Avro matches fields by name; only the binary "
                "layout of new data changes)",
            )

    def _fields(
        self,
        old_fields: Mapping[str, Mapping[str, Any]],
        new_fields: Mapping[str, Mapping[str, Any]],
        namespaces: tuple[str, str],
        path: str,
    ) -> dict[str, str]:
        """Compare each new field with the old one of its name or alias; report the added ones.
        Returns new name -> old name for the fields matched."""
        old_own, new_own = namespaces
        matched: dict[str, str] = {}
        for name, item in new_fields.items():
            at = f"{path}.{name}" if path else name
            if name in old_fields:
                matched[name] = name
                self._field(old_fields[name], old_own, item, new_own, at, renamed_from=None)
                continue
            aliases = [a for a in item.get("aliases", []) if a in old_fields]
            previous = next((a for a in aliases if a not in new_fields), None)
            if previous is not None:
                matched[name] = previous
                self.add(
                    Kind.FIELD_RENAMED,
                    at,
                    f"field renamed from {previous} (alias {previous!r} lets the new schema "
                    "read data written before the rename)",
                )
                self._field(old_fields[previous], old_own, item, new_own, at, renamed_from=previous)
            else:
                self._added(item, at)
        return matched

    def _added(self, item: Mapping[str, Any], path: str) -> None:
        shown = describe(item.get("type"))
        if "default" in item:
            message = f"field added with default {_value(item['default'])} (type {shown})"
            self.add(Kind.FIELD_ADDED, path, message)
        else:
            self.add(
                Kind.FIELD_ADDED_WITHOUT_DEFAULT,
                path,
                f"field added without a default (type {shown}): the new schema cannot read data "
                "written before it",
            )

    def _removed(self, item: Mapping[str, Any], path: str) -> None:
        shown = describe(item.get("type"))
        if "default" in item:
            self.add(
                Kind.FIELD_REMOVED,
                path,
                f"field removed (type {shown}); it had default {_value(item['default'])}, which "
                "readers of the old schema use for new data",
            )
        else:
            self.add(
                Kind.FIELD_REMOVED_WITHOUT_DEFAULT,
                path,
                f"field removed (type {shown}); it had no default, so readers of the old schema "
                "cannot read new data",
            )

    def _field(
        self,
        old: Mapping[str, Any],
        old_ns: str,
        new: Mapping[str, Any],
        new_ns: str,
        path: str,
        *,
        renamed_from: str | None,
    ) -> None:
        self.type(old.get("type"), old_ns, new.get("type"), new_ns, path)
        self._doc(old, new, path, "")
        old_class, new_class = old.get("classification"), new.get("classification")
        if old_class != new_class:
            self.add(
                Kind.CLASSIFICATION_CHANGED,
                path,
                f"classification changed {old_class or '(none)'} -> {new_class or '(none)'}",
            )
        if "default" in old and "default" not in new:
            self.add(Kind.DEFAULT_CHANGED, path, f"default removed (was {_value(old['default'])})")
        elif "default" in new and "default" not in old:
            self.add(Kind.DEFAULT_CHANGED, path, f"default added: {_value(new['default'])}")
        elif "default" in new and old["default"] != new["default"]:
            message = f"default changed {_value(old['default'])} -> {_value(new['default'])}"
            self.add(Kind.DEFAULT_CHANGED, path, message)
        skip = (renamed_from,) if renamed_from else ()
        self._aliases(old, new, path, "", skip=skip)
        self._properties(old, new, path, "", FIELD_KEYS)

    def _enum(
        self, old: Mapping[str, Any], old_ns: str, new: Mapping[str, Any], new_ns: str, path: str
    ) -> None:
        label = self._named(old, old_ns, new, new_ns, path)
        old_symbols, new_symbols = list(old.get("symbols", [])), list(new.get("symbols", []))
        added = [s for s in new_symbols if s not in old_symbols]
        removed = [s for s in old_symbols if s not in new_symbols]
        if added:
            self.add(Kind.ENUM_SYMBOLS_ADDED, path, f"{label}: symbols added: {', '.join(added)}")
        if removed:
            message = f"{label}: symbols removed: {', '.join(removed)}"
            self.add(Kind.ENUM_SYMBOLS_REMOVED, path, message)
        if old.get("default") != new.get("default"):
            message = (
                f"{label}: default symbol changed {_value(old.get('default'))} -> "
                f"{_value(new.get('default'))}"
            )
            self.add(Kind.DEFAULT_CHANGED, path, message)

    def _doc(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, label: str) -> None:
        before, after = old.get("doc"), new.get("doc")
        if before == after:
            return
        if before is None:
            self.add(Kind.DOC_CHANGED, path, f"{label}doc added: {_short(after)}")
        elif after is None:
            self.add(Kind.DOC_CHANGED, path, f"{label}doc removed (was {_short(before)})")
        else:
            message = f"{label}doc changed from {_short(before)} to {_short(after)}"
            self.add(Kind.DOC_CHANGED, path, message)

    def _aliases(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        path: str,
        label: str,
        *,
        skip: Iterable[str],
    ) -> None:
        before, after = list(old.get("aliases", [])), list(new.get("aliases", []))
        for alias in after:
            if alias not in before and alias not in skip:
                self.add(Kind.ALIAS_ADDED, path, f"{label}alias added: {alias}")
        for alias in before:
            if alias not in after:
                self.add(Kind.ALIAS_REMOVED, path, f"{label}alias removed: {alias}")

    def _properties(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        path: str,
        label: str,
        known: frozenset[str],
    ) -> None:
        for key in sorted((set(old) | set(new)) - known):
            if key in old and key not in new:
                message = f"{label}attribute {key} removed (was {_value(old[key])})"
            elif key in new and key not in old:
                message = f"{label}attribute {key} added: {_value(new[key])}"
            elif old[key] != new[key]:
                message = f"{label}attribute {key} changed {_value(old[key])} -> {_value(new[key])}"
            else:
                continue
            self.add(Kind.PROPERTY_CHANGED, path, message)
