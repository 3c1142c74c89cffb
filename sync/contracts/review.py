"""Contract review against a Confluent-compatible registry, through ``SchemaRegistryClient``:
the subjects of each contract, the history of a subject, the changes and verdicts against what
the registry holds (``govsync schemas diff``), whether the registry would accept a contract
(``check``), and registering contracts with the compatibility level each one asks for
(``govsync.compatibility``).

The comparison itself is pure and lives apart: :mod:`sync.contracts.diff` for the changes,
:mod:`sync.contracts.verdicts` for the verdict per compatibility level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from sync.contracts.compatibility import Level, ParsedSchema, check, parse
from sync.contracts.diff import Change, diff
from sync.contracts.envelope import envelope_schema
from sync.contracts.loader import Contract
from sync.contracts.verdicts import Verdict, verdicts
from sync.errors import ContractError

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
COMPATIBILITY_NOT_CONFIGURED = 40408


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
    targets = versions if level.transitive else versions[:1]
    accepted = _registry_accepts(client, subject, targets, latest=versions[0])
    if accepted is None:
        return SubjectCheck(subject.name, Outcome.NEW, wanted=subject.level)
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


def _registry_accepts(
    client: SchemaRegistryClient,
    subject: Subject,
    targets: Sequence[RegisteredVersion],
    *,
    latest: RegisteredVersion,
) -> bool | None:
    """Whether the registry accepts ``subject``'s schema against every one of ``targets``;
    None when the subject disappeared meanwhile."""
    schema = Schema(subject.text, "AVRO")
    for target in targets:
        version: int | str = "latest" if target is latest else target.version
        try:
            if not client.test_compatibility(subject.name, schema, version=version):
                return False
        except SchemaRegistryError as exc:
            if exc.error_code != SUBJECT_NOT_FOUND:
                raise
            return None
    return True


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
