"""Contract review: what changed between two versions of a schema, in a reviewer's words, and
whether each compatibility level accepts the change.

:func:`diff` is a pure function of two schemas (the registered one and the proposed one): it
walks both, resolving named types, and lists each change with a dotted field path
(``address.street``; ``tags[]`` for array items, ``labels{}`` for map values). :func:`verdicts`
asks Apache Avro's checker, through :mod:`sync.contracts.compatibility`, whether every level
accepts the proposed schema after a subject's history.

The rest talks to a Confluent-compatible registry through ``SchemaRegistryClient``: the
history of a subject, whether the registry would accept a contract, and registering contracts
with the compatibility level each one asks for (``govsync.compatibility``).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from avro.schema import Schema as AvroSchema
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from sync.contracts.compatibility import LEVELS, Level, ParsedSchema, check, parse
from sync.contracts.envelope import envelope_schema
from sync.contracts.loader import Contract
from sync.errors import ContractError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})
# Avro's promotions that widen a number: the reader may be wider than the writer.
WIDENINGS = frozenset(
    {
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "float"),
        ("long", "double"),
        ("float", "double"),
    }
)
# attributes compared on their own; anything else on a record or field is a "property"
RECORD_KEYS = frozenset({"type", "name", "namespace", "doc", "fields", "aliases"})
FIELD_KEYS = frozenset({"name", "type", "doc", "default", "aliases", "classification"})

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
COMPATIBILITY_NOT_CONFIGURED = 40408


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
    differ = _Differ(_Types(old_schema), _Types(new_schema))
    differ.type(old_schema, "", new_schema, "", "")
    return differ.changes


# -- named types ---------------------------------------------------------------------------


def _full_name(definition: Mapping[str, Any], enclosing: str) -> tuple[str, str]:
    """(full name, namespace) of a named type defined inside namespace ``enclosing``."""
    name = str(definition.get("name", ""))
    if "." in name:
        return name, name.rpartition(".")[0]
    namespace = definition.get("namespace", enclosing) or ""
    return (f"{namespace}.{name}" if namespace else name), str(namespace)


class _Types:
    """The named types of one schema, so references by name resolve to their definitions."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, tuple[Mapping[str, Any], str]] = {}
        self._collect(schema, "")

    def _collect(self, schema: Any, namespace: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, Mapping):
            return
        kind = schema.get("type")
        if kind in NAMED:
            full, own = _full_name(schema, namespace)
            self.named.setdefault(full, (schema, namespace))
            for item in schema.get("fields", []) if kind == "record" else []:
                if isinstance(item, Mapping):
                    self._collect(item.get("type"), own)
        elif kind == "array":
            self._collect(schema.get("items"), namespace)
        elif kind == "map":
            self._collect(schema.get("values"), namespace)
        elif isinstance(kind, Mapping | list):
            self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str) -> tuple[Any, str]:
        """``schema`` with a name reference (or ``{"type": name}``) replaced by its definition;
        the namespace returned is the one the definition sits in."""
        for _ in range(64):  # a chain of references, never a loop in a valid schema
            if isinstance(schema, str) and schema not in PRIMITIVES:
                candidates = [schema]
                if "." not in schema and namespace:
                    candidates.insert(0, f"{namespace}.{schema}")
                for candidate in candidates:
                    if candidate in self.named:
                        schema, namespace = self.named[candidate]
                        break
                else:
                    return schema, namespace
            elif isinstance(schema, Mapping) and (
                isinstance(schema.get("type"), Mapping | list)
                or (isinstance(schema.get("type"), str) and _plain_reference(schema))
            ):
                schema = schema["type"]
            else:
                return schema, namespace
        return schema, namespace


def _plain_reference(schema: Mapping[str, Any]) -> bool:
    """``{"type": "vn.gov.x.Name"}``: a dict that only names another type."""
    kind = schema["type"]
    return kind not in PRIMITIVES and kind not in NAMED and kind not in ("array", "map")


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        return kind if isinstance(kind, str) else "unknown"
    return str(schema)


def _logical(schema: Any) -> tuple[Any, ...]:
    if not isinstance(schema, Mapping) or "logicalType" not in schema:
        return ()
    return (schema["logicalType"], schema.get("precision"), schema.get("scale", 0))


def describe(schema: Any) -> str:
    """A type in a few words: ``null | string``, ``int (date)``, ``record Address``."""
    if isinstance(schema, list):
        return " | ".join(describe(branch) for branch in schema)
    if isinstance(schema, str):
        return schema.rpartition(".")[2] if schema not in PRIMITIVES else schema
    if not isinstance(schema, Mapping):
        return json.dumps(schema)
    kind = schema.get("type")
    if isinstance(kind, Mapping | list):
        return describe(kind)
    logical = _logical(schema)
    if logical and logical[0] == "decimal":
        base = f"{kind} (decimal {logical[1]},{logical[2]})"
    elif logical:
        base = f"{kind} ({logical[0]})"
    elif kind in NAMED:
        base = f"{kind} {str(schema.get('name', '')).rpartition('.')[2]}"
    elif kind == "array":
        base = f"array of {describe(schema.get('items'))}"
    elif kind == "map":
        base = f"map of {describe(schema.get('values'))}"
    else:
        base = str(kind)
    if kind == "fixed":
        base += f" (size {schema.get('size')})"
    return base


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _short(text: Any) -> str:
    return repr(textwrap.shorten(str(text), width=70, placeholder="…"))


class _Differ:
    def __init__(self, old: _Types, new: _Types) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, kind: Kind, path: str, message: str) -> None:
        self.changes.append(Change(kind, path, message))

    def type(self, old: Any, old_ns: str, new: Any, new_ns: str, path: str) -> None:
        old, old_ns = self.old.resolve(old, old_ns)
        new, new_ns = self.new.resolve(new, new_ns)
        old_kind, new_kind = _kind(old), _kind(new)
        if "union" in (old_kind, new_kind):
            self._union(old, old_ns, new, new_ns, path)
        elif old_kind != new_kind:
            self._changed_kind(old, new, path)
        elif old_kind in PRIMITIVES:
            if _logical(old) != _logical(new):
                self.add(
                    Kind.TYPE_CHANGED, path, f"type changed {describe(old)} -> {describe(new)}"
                )
        elif old_kind == "record":
            self._record(old, old_ns, new, new_ns, path)
        elif old_kind == "enum":
            self._enum(old, old_ns, new, new_ns, path)
        elif old_kind == "fixed":
            self._named(old, old_ns, new, new_ns, path)
            if old.get("size") != new.get("size") or _logical(old) != _logical(new):
                self.add(
                    Kind.TYPE_CHANGED, path, f"type changed {describe(old)} -> {describe(new)}"
                )
        elif old_kind == "array":
            self.type(old.get("items"), old_ns, new.get("items"), new_ns, f"{path}[]")
        elif old_kind == "map":
            self.type(old.get("values"), old_ns, new.get("values"), new_ns, f"{path}{{}}")

    def _changed_kind(self, old: Any, new: Any, path: str) -> None:
        pair = (_kind(old), _kind(new))
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
    def _branch_key(types: _Types, branch: Any, namespace: str) -> str:
        """What Avro matches union branches by: the type, or a named type's short name."""
        resolved, _ = types.resolve(branch, namespace)
        kind = _kind(resolved)
        if kind in NAMED:
            return f"{kind}:{str(resolved.get('name', '')).rpartition('.')[2]}"
        return kind

    # -- named types ------------------------------------------------------------------------

    def _named(
        self, old: Mapping[str, Any], old_ns: str, new: Mapping[str, Any], new_ns: str, path: str
    ) -> str:
        """Compare names, namespaces, docs and aliases of two named types; return a label."""
        old_full, old_space = _full_name(old, old_ns)
        new_full, new_space = _full_name(new, new_ns)
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
        pair = (_full_name(old, old_ns)[0], _full_name(new, new_ns)[0])
        if pair in self._seen:
            return  # reported where the type was first met
        self._seen.add(pair)
        label = self._named(old, old_ns, new, new_ns, path)
        self._properties(old, new, path, f"{label}: ", RECORD_KEYS)
        old_own, new_own = _full_name(old, old_ns)[1], _full_name(new, new_ns)[1]
        old_fields = {f["name"]: f for f in old.get("fields", []) if isinstance(f, Mapping)}
        new_fields = {f["name"]: f for f in new.get("fields", []) if isinstance(f, Mapping)}
        matched: dict[str, str] = {}  # new name -> old name
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


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether ``level`` accepts the proposed schema, and Avro's reasons when it does not."""

    level: Level
    compatible: bool
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "compatible": self.compatible,
            "reasons": list(self.reasons),
        }


def verdicts(candidate: AvroSchema, history: Sequence[tuple[int, AvroSchema]]) -> list[Verdict]:
    """A verdict per compatibility level for ``candidate`` after ``history`` (version, schema),
    newest first: non-transitive levels against the newest version, transitive ones against
    every version, as the registry decides."""
    out = []
    for level in LEVELS:
        reasons = check(level, candidate, history, explain=True)
        out.append(Verdict(level, not reasons, tuple(reasons)))
    return out


# -- contracts and subjects ----------------------------------------------------------------


class Part(StrEnum):
    KEY = "key"
    VALUE = "value"


@dataclass(frozen=True, slots=True)
class Subject:
    """A registry subject of a contract: ``<prefix><topic>-key`` or ``-value``."""

    name: str
    contract: Contract
    part: Part

    @property
    def schema(self) -> dict[str, Any]:
        """The schema the connector registers under this subject."""
        if self.part is Part.KEY:
            return self.contract.key_schema
        return envelope_schema(self.contract)

    @property
    def text(self) -> str:
        return json.dumps(self.schema)

    @property
    def level(self) -> Level:
        """The compatibility the contract asks for (``govsync.compatibility``)."""
        try:
            return Level(self.contract.compatibility)
        except ValueError:
            raise ContractError(
                f"{self.contract.path}: govsync.compatibility {self.contract.compatibility!r} "
                f"is not one of {', '.join(Level)}",
                contract=str(self.contract.path),
            ) from None


def subjects_of(contracts: Mapping[str, Contract], prefix: str = "") -> list[Subject]:
    """Every contract's key and value subjects, in topic order."""
    out = []
    for topic in sorted(contracts):
        contract = contracts[topic]
        for part in Part:
            out.append(Subject(f"{prefix}{topic}-{part.value}", contract, part))
    return out


def find_subject(contracts: Mapping[str, Contract], name: str, prefix: str = "") -> Subject:
    """The subject ``name`` of one of ``contracts``; :class:`ContractError` when none has it."""
    for subject in subjects_of(contracts, prefix):
        if subject.name == name:
            return subject
    known = ", ".join(s.name for s in subjects_of(contracts, prefix)) or "none"
    raise ContractError(
        f"no contract has the subject {name!r}: subjects are <topic>-key and <topic>-value "
        f"(known: {known})"
    )


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version of a subject as the registry holds it."""

    version: int
    schema_id: int
    schema: dict[str, Any]
    parsed: ParsedSchema


def history(client: SchemaRegistryClient, subject: str) -> list[RegisteredVersion]:
    """Every live version of ``subject``, newest first; empty when it is not registered."""
    try:
        numbers = client.get_versions(subject)
    except SchemaRegistryError as exc:
        if exc.error_code == SUBJECT_NOT_FOUND:
            return []
        raise
    out = []
    for number in sorted(numbers, reverse=True):
        registered = client.get_version(subject, number)
        text = registered.schema.schema_str or "null"
        dependencies = _dependencies(client, registered.schema.references or [], seen=set())
        out.append(
            RegisteredVersion(
                version=int(registered.version or number),
                schema_id=int(registered.schema_id or 0),
                schema=json.loads(text),
                parsed=parse(text, dependencies),
            )
        )
    return out


def _dependencies(
    client: SchemaRegistryClient, references: Sequence[Any], *, seen: set[tuple[str, int]]
) -> list[str]:
    """The texts of referenced schemas, each after the ones it depends on."""
    out: list[str] = []
    for reference in references:
        key = (str(reference.subject), int(reference.version))
        if key in seen:
            continue
        seen.add(key)
        found = client.get_version(key[0], key[1])
        out += _dependencies(client, found.schema.references or [], seen=seen)
        out.append(found.schema.schema_str or "null")
    return out


def configured_level(client: SchemaRegistryClient, subject: str) -> Level:
    """The level the registry applies to ``subject``: its own, else the global one."""
    try:
        return Level(str(client.get_compatibility(subject)).upper())
    except SchemaRegistryError as exc:
        if exc.error_code not in (COMPATIBILITY_NOT_CONFIGURED, SUBJECT_NOT_FOUND):
            raise
    return Level(str(client.get_compatibility()).upper())


@dataclass(frozen=True, slots=True)
class SubjectReview:
    """What ``govsync schemas diff`` shows: the changes against the newest registered version
    and a verdict per level."""

    subject: str
    history: list[RegisteredVersion]
    changes: list[Change]
    verdicts: list[Verdict]
    configured: Level
    identical: bool

    def to_json(self) -> dict[str, Any]:
        latest = self.history[0] if self.history else None
        return {
            "subject": self.subject,
            "registered": latest is not None,
            "latest_version": latest.version if latest else None,
            "latest_id": latest.schema_id if latest else None,
            "versions": [v.version for v in self.history],
            "identical": self.identical,
            "configured_compatibility": self.configured.value,
            "changes": [c.to_json() for c in self.changes],
            "verdicts": [v.to_json() for v in self.verdicts],
        }


def review(client: SchemaRegistryClient, subject: str, local: Mapping[str, Any]) -> SubjectReview:
    """Compare the local schema of ``subject`` with what the registry holds."""
    candidate = parse(json.dumps(local))
    versions = history(client, subject)
    latest = versions[0] if versions else None
    changes = diff(latest.schema, local) if latest else []
    return SubjectReview(
        subject=subject,
        history=versions,
        changes=changes,
        verdicts=verdicts(candidate.schema, [(v.version, v.parsed.schema) for v in versions]),
        configured=configured_level(client, subject),
        identical=latest is not None and latest.parsed.canonical == candidate.canonical,
    )


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    NEW = "new"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """Whether the registry would accept a subject's local schema under its configured level."""

    subject: str
    outcome: Outcome
    level: Level | None = None
    versions: tuple[int, ...] = ()
    reasons: tuple[str, ...] = ()
    wanted: Level | None = None  # the contract's own govsync.compatibility

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "outcome": self.outcome.value,
            "compatibility": self.level.value if self.level else None,
            "contract_compatibility": self.wanted.value if self.wanted else None,
            "checked_versions": list(self.versions),
            "reasons": list(self.reasons),
        }


def check_subject(client: SchemaRegistryClient, subject: Subject) -> SubjectCheck:
    """Ask the registry whether it would accept ``subject``'s local schema.

    The registry's compatibility endpoint checks one version under the subject's level, so a
    transitive level is tested against each registered version; a subject not registered yet
    accepts anything. When the registry refuses, the reasons are Avro's checker's.
    """
    versions = history(client, subject.name)
    if not versions:
        return SubjectCheck(subject.name, Outcome.NEW, wanted=subject.level)
    level = configured_level(client, subject.name)
    schema = Schema(subject.text, "AVRO")
    targets = versions if level.transitive else versions[:1]
    accepted = True
    for target in targets:
        version: int | str = "latest" if target is versions[0] else target.version
        try:
            accepted = bool(client.test_compatibility(subject.name, schema, version=version))
        except SchemaRegistryError as exc:
            if exc.error_code != SUBJECT_NOT_FOUND:
                raise
            return SubjectCheck(subject.name, Outcome.NEW, wanted=subject.level)
        if not accepted:
            break
    checked = tuple(v.version for v in targets)
    if accepted:
        return SubjectCheck(subject.name, Outcome.ACCEPTED, level, checked, wanted=subject.level)
    candidate = parse(subject.text).schema
    history_ = [(v.version, v.parsed.schema) for v in versions]
    reasons = check(level, candidate, history_, explain=True)
    return SubjectCheck(
        subject.name,
        Outcome.REJECTED,
        level,
        checked,
        tuple(reasons or ["the registry refused it; Avro's checker here gives no reason"]),
        wanted=subject.level,
    )


@dataclass(frozen=True, slots=True)
class Registration:
    """A subject after ``govsync schemas register``: its schema id, version and level."""

    subject: str
    schema_id: int
    version: int
    level: Level
    created: bool
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject,
            "id": self.schema_id,
            "version": self.version,
            "compatibility": self.level.value,
            "created": self.created,
        }
        if self.error:
            out["error"] = self.error
        return out


def register(client: SchemaRegistryClient, subject: Subject) -> Registration:
    """Set ``subject``'s compatibility to the contract's level and register its schema, unless
    the registry already holds it under the subject (then nothing changes)."""
    level = subject.level
    client.set_compatibility(subject.name, level.value)
    schema = Schema(subject.text, "AVRO")
    try:
        found = client.lookup_schema(subject.name, schema)
        version, schema_id, created = found.version, found.schema_id, False
    except SchemaRegistryError as exc:
        if exc.error_code not in (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND):
            raise
        try:
            registered = client.register_schema_full_response(subject.name, schema)
        except SchemaRegistryError as refused:
            return Registration(subject.name, 0, 0, level, False, error=_error_text(refused))
        version, schema_id, created = registered.version, registered.schema_id, True
    return Registration(subject.name, int(schema_id or 0), int(version or 0), level, created)


def _error_text(exc: SchemaRegistryError) -> str:
    return f"{exc.http_status_code} (error {exc.error_code}): {exc.error_message}"
