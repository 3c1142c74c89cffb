"""The registry's vocabulary: compatibility levels, modes, schemas, subject versions, and the
Confluent error codes answered for each kind of failure.

Everything here is plain data so the store, the service and the HTTP layer agree on one shape.
Errors are built by small factories so every place that says "subject not found" says it with
the same code and the same words as Confluent's Schema Registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from sync.contracts.compatibility import Level
from sync.errors import RegistryError

AVRO = "AVRO"
LATEST = -1  # "latest" in a version path parameter, as Confluent spells it


# the registry's name for a subject's evolution rule; the rules live with the contracts
Compatibility = Level


def parse_compatibility(text: object) -> Compatibility:
    """A compatibility level from a request body, or Confluent's 42203 error."""
    try:
        if not isinstance(text, str):
            raise ValueError(text)
        return Compatibility(text.upper())
    except ValueError:
        raise RegistryError(
            422,
            42203,
            "Invalid compatibility level. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive",
        ) from None


class Mode(StrEnum):
    """Whether a subject (or the registry) accepts writes, and whether ids come from clients.

    READONLY_OVERRIDE, set globally, makes every subject read-only whatever its own mode.
    """

    READWRITE = "READWRITE"
    READONLY = "READONLY"
    READONLY_OVERRIDE = "READONLY_OVERRIDE"
    IMPORT = "IMPORT"

    @classmethod
    def parse(cls, text: object) -> Mode:
        try:
            if not isinstance(text, str):
                raise ValueError(text)
            return cls(text.upper())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise RegistryError(422, 42204, f"Invalid mode. Valid values are {valid}") from None

    @property
    def writable(self) -> bool:
        return self not in (Mode.READONLY, Mode.READONLY_OVERRIDE)


class Lookup(Enum):
    """Which subject versions a query sees: live ones, all, or only the soft-deleted ones."""

    ACTIVE = "active"
    ALL = "all"
    DELETED_ONLY = "deleted_only"

    @classmethod
    def of(cls, deleted: bool, deleted_only: bool = False) -> Lookup:
        if deleted_only:
            return cls.DELETED_ONLY
        return cls.ALL if deleted else cls.ACTIVE


DEFAULT_COMPATIBILITY = Compatibility.BACKWARD
DEFAULT_MODE = Mode.READWRITE


@dataclass(frozen=True, slots=True)
class Reference:
    """A named type defined by another subject's version, as in Confluent's ``references``."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True, slots=True)
class SchemaInput:
    """A schema as a client sends it, before it is parsed."""

    schema: str
    schema_type: str = AVRO
    references: tuple[Reference, ...] = ()
    id: int | None = None  # only honoured in IMPORT mode
    version: int | None = None  # only honoured in IMPORT mode

    @classmethod
    def from_json(cls, body: object) -> SchemaInput:
        if not isinstance(body, Mapping):
            raise invalid_schema("the request body must be a JSON object")
        text = body.get("schema")
        if text is None or (isinstance(text, str) and not text.strip()):
            raise RegistryError(422, 42201, "Empty schema")
        if not isinstance(text, str):
            raise invalid_schema("the schema must be a JSON string holding the schema's text")
        for feature in ("ruleSet", "metadata"):
            if body.get(feature):  # data contracts: refused, so nobody relies on them silently
                raise invalid_schema(f"{feature} is not supported by this registry")
        schema_type = str(body.get("schemaType") or AVRO).upper()
        if schema_type != AVRO:
            raise invalid_schema(f"schemaType {schema_type} is not supported (only AVRO)")
        refs = body.get("references") or []
        if not isinstance(refs, list):
            raise invalid_schema("references must be a list")
        return cls(
            schema=text,
            schema_type=schema_type,
            references=tuple(_reference(r) for r in refs),
            id=_optional_int(body.get("id"), "id"),
            version=_optional_int(body.get("version"), "version"),
        )


def _reference(raw: object) -> Reference:
    if not isinstance(raw, Mapping):
        raise invalid_schema("a reference must be an object with name, subject and version")
    name, subject, version = raw.get("name"), raw.get("subject"), raw.get("version")
    if (
        not isinstance(name, str)
        or not isinstance(subject, str)
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise invalid_schema("a reference needs a string name and subject and an integer version")
    return Reference(name, validate_subject(subject), version)


def _optional_int(raw: object, what: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 2**31 - 1:
        raise invalid_schema(f"{what} must be an integer from 1 to 2^31-1")
    return raw


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """One schema under its global id: immutable once written."""

    id: int
    guid: str
    schema_type: str
    schema: str
    references: tuple[Reference, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``/schemas/ids/{id}`` body. Confluent leaves out schemaType for Avro."""
        out: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != AVRO:
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        return out


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """A version of a subject and the schema it points at."""

    subject: str
    version: int
    schema: StoredSchema
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        head = {"subject": self.subject, "version": self.version, "id": self.schema.id}
        return {**head, "guid": self.schema.guid, **self.schema.to_json()}


# -- errors, with Confluent's codes and wording ----------------------------------------------


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: int | str) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(schema_id: int | str | None = None) -> RegistryError:
    text = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
    return RegistryError(404, 40403, text)


def subject_soft_deleted(subject: str) -> RegistryError:
    text = f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
    return RegistryError(404, 40404, text)


def subject_not_soft_deleted(subject: str) -> RegistryError:
    text = f"Subject '{subject}' was not deleted first before being permanently deleted"
    return RegistryError(404, 40405, text)


def version_soft_deleted(subject: str, version: int) -> RegistryError:
    text = (
        f"Subject '{subject}' Version {version} was soft deleted. "
        "Set permanent=true to delete permanently"
    )
    return RegistryError(404, 40406, text)


def version_not_soft_deleted(subject: str, version: int) -> RegistryError:
    text = (
        f"Subject '{subject}' Version {version} was not deleted first "
        "before being permanently deleted"
    )
    return RegistryError(404, 40407, text)


def compatibility_not_configured(subject: str) -> RegistryError:
    text = f"Subject '{subject}' does not have subject-level compatibility configured"
    return RegistryError(404, 40408, text)


def mode_not_configured(subject: str) -> RegistryError:
    text = f"Subject '{subject}' does not have subject-level mode configured"
    return RegistryError(404, 40409, text)


def incompatible(subject: str, messages: list[str]) -> RegistryError:
    # Confluent answers HTTP 409 with error code 409 (its RestIncompatibleSchemaException
    # reuses the status as the code), not a five-digit 409xx code; clients test either.
    text = (
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}", '
        f"details: {messages}"
    )
    return RegistryError(409, 409, text)


def invalid_schema(detail: str) -> RegistryError:
    return RegistryError(422, 42201, f"Invalid schema: {detail}")


def invalid_version(text: str) -> RegistryError:
    return RegistryError(
        422,
        42202,
        f"The specified version '{text}' is not a valid version id. Allowed values are between "
        '[1, 2^31-1] and the string "latest"',
    )


def not_permitted(detail: str) -> RegistryError:
    return RegistryError(422, 42205, detail)


def reference_exists(detail: str) -> RegistryError:
    return RegistryError(422, 42206, detail)


def id_conflict(detail: str) -> RegistryError:
    return RegistryError(422, 42207, detail)


def invalid_subject(subject: str, why: str = "") -> RegistryError:
    text = f"The specified subject '{subject}' is not valid."
    return RegistryError(422, 42208, f"{text} {why}" if why else text)


def validate_subject(subject: str) -> str:
    """``subject`` if it may name a subject, else 42208.

    As in Confluent, any character but an ISO control character (U+0000-U+001F,
    U+007F-U+009F) may appear, since clients URL-encode subjects. Context-qualified names
    (``:.context:subject``) are refused: contexts are not served.
    """
    if not subject or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in subject):
        raise invalid_subject(subject.encode("unicode_escape").decode())
    if subject.startswith(":."):
        raise invalid_subject(subject, "Contexts are not supported by this registry.")
    return subject


def store_error(detail: str = "Error in the backend data store") -> RegistryError:
    return RegistryError(500, 50001, detail)


def parse_version(text: str) -> int:
    """A version path parameter: ``latest``, ``-1`` or 1..2^31-1; else 42202."""
    if text == "latest":
        return LATEST
    try:
        value = int(text)
    except ValueError:
        raise invalid_version(text) from None
    if value == LATEST or 1 <= value <= 2**31 - 1:
        return value
    raise invalid_version(text)
