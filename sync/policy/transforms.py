"""Per-field transforms a subscription applies before a value leaves the processor.

- ``mask``: keep the last ``keep`` characters (default 4) and replace every other one by ``*``;
  a value no longer than ``keep`` is masked whole, so a mask never shows a value in the clear.
  The length shows. Text fields only.
- ``hash``: HMAC-SHA256 of the value under a secret key the manifest names (the secret itself
  is never in the manifest), as 64 lowercase hex digits. Within one key the same value always
  gives the same pseudonym, so a subscriber can link a citizen across its topics and over
  time; under another key the pseudonyms are unlinkable. Text and integer fields.
- ``year``: a date or timestamp truncated to its year, an int (a timestamp's year in UTC), as
  PostgreSQL's ``extract(year ...)`` gives it: 44 BC is -44 (there is no year 0), years after
  9999 are themselves. ``infinity`` and ``-infinity`` have no year: they give 2**31-1 and
  -2**31, the extremes of the ``int``, the way the contracts carry infinite dates -- a
  non-null date stays a non-null year and still sorts after (or before) every other.

Each transform is deterministic (a replayed event projects to the same row, so replicas
converge), keeps a nullable field nullable and maps null to null, and says the Avro type it
produces, from which the replica's SQL column follows (:func:`sync.contracts.sql_type_of`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from abc import abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictInt, StrictStr
from pydantic import Field as PydanticField

from sync.contracts.columns import sql_type_of
from sync.errors import ConfigError
from sync.policy.identifiers import check_identifier
from sync.temporal import (
    INT32_MAX,
    INT32_MIN,
    FarDate,
    FarTimestamp,
    FarValue,
    civil_from_days,
    pg_year,
)

MIN_SECRET_BYTES = 32
ValueFunction = Callable[[Any], Any]


class _Transform(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @abstractmethod
    def problem(self, avro_type: Any) -> str | None:
        """Why this transform cannot apply to a field of ``avro_type``; None if it can."""

    @abstractmethod
    def output_type(self, avro_type: Any) -> Any:
        """The Avro type of the transformed field, nullable when the field is."""

    @abstractmethod
    def bind(self, secrets: Mapping[str, bytes]) -> ValueFunction:
        """The function applied to each value; a ConfigError when a secret is missing."""

    @abstractmethod
    def describe(self) -> str:
        """A sentence for the projected field's doc."""

    def sql_type(self, avro_type: Any) -> str:
        """The replica column type of the transformed field."""
        return sql_type_of(self.output_type(avro_type), where=self.describe())


class Mask(_Transform):
    kind: Literal["mask"]
    keep: Annotated[StrictInt, PydanticField(ge=0, le=64)] = 4

    def problem(self, avro_type: Any) -> str | None:
        if base_type(avro_type) == "string":
            return None
        return f"mask applies to text fields, not {_shown(avro_type)}"

    def output_type(self, avro_type: Any) -> Any:
        return avro_type

    def bind(self, secrets: Mapping[str, bytes]) -> ValueFunction:
        keep = self.keep

        def mask(value: Any) -> Any:
            if value is None:
                return None
            if not isinstance(value, str):
                raise TypeError(f"mask takes text, not {type(value).__name__}")
            hidden = len(value) - keep
            return "*" * len(value) if hidden <= 0 else "*" * hidden + value[hidden:]

        return mask

    def describe(self) -> str:
        return f"Masked: all but the last {self.keep} characters are replaced by '*'."


class Hash(_Transform):
    kind: Literal["hash"]
    key: Annotated[StrictStr, AfterValidator(check_identifier)]

    def problem(self, avro_type: Any) -> str | None:
        if base_type(avro_type) in ("string", "int", "long"):
            return None
        return f"hash applies to text and integer fields, not {_shown(avro_type)}"

    def output_type(self, avro_type: Any) -> Any:
        return _like_nullability(avro_type, "string")

    def bind(self, secrets: Mapping[str, bytes]) -> ValueFunction:
        secret = secret_for(self.key, secrets)

        def pseudonym(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise TypeError(f"hash takes text or an integer, not {type(value).__name__}")
            data = str(value).encode("utf-8")
            return hmac.new(secret, data, hashlib.sha256).hexdigest()

        return pseudonym

    def describe(self) -> str:
        return f"Pseudonymised: HMAC-SHA256 under key '{self.key}', as hex."


class Year(_Transform):
    kind: Literal["year"]

    def problem(self, avro_type: Any) -> str | None:
        base = base_type(avro_type)
        logical = base.get("logicalType", "") if isinstance(base, dict) else ""
        if logical == "date" or "timestamp" in logical:
            return None
        return f"year applies to date and timestamp fields, not {_shown(avro_type)}"

    def output_type(self, avro_type: Any) -> Any:
        return _like_nullability(avro_type, "int")

    def bind(self, secrets: Mapping[str, bytes]) -> ValueFunction:
        return _year

    def describe(self) -> str:
        return "Truncated to its year."


def _far_year(value: FarValue) -> int:
    if value.infinite:
        return INT32_MAX if int(value) > 0 else INT32_MIN
    if isinstance(value, FarDate):
        days = int(value)
    elif isinstance(value, FarTimestamp):  # and FarTimestampTz, already in UTC
        days = int(value) // 86_400_000_000
    else:
        raise TypeError(f"year takes a date or a timestamp, not {type(value).__name__}")
    return pg_year(civil_from_days(days)[0])


def _year(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, FarValue):
        return _far_year(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).year
    if isinstance(value, date):
        return value.year
    raise TypeError(f"year takes a date or a timestamp, not {type(value).__name__}")


def _shorthand(value: Any) -> Any:
    """``year`` stands for ``{kind: year}``, ``mask`` for ``{kind: mask}``."""
    return {"kind": value} if isinstance(value, str) else value


Transform = Annotated[
    Mask | Hash | Year,
    PydanticField(discriminator="kind"),
    BeforeValidator(_shorthand),
]


def secret_for(key: str, secrets: Mapping[str, bytes]) -> bytes:
    """The secret of hash key ``key``; a ConfigError (naming the key, never a secret's bytes)
    when it is missing or too short for HMAC-SHA256."""
    secret = secrets.get(key)
    if secret is None:
        raise ConfigError(f"no secret for hash key {key!r}: the processor must be given it")
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"the secret of hash key {key!r} has {len(secret)} bytes; "
            f"HMAC-SHA256 needs at least {MIN_SECRET_BYTES}"
        )
    return bytes(secret)


def base_type(avro_type: Any) -> Any:
    """The type of a field without its null branch; a plain ``{"type": "string"}`` unwrapped."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        return base_type(branches[0]) if len(branches) == 1 else avro_type
    if isinstance(avro_type, dict) and set(avro_type) == {"type"}:
        return base_type(avro_type["type"])
    return avro_type


def _like_nullability(source: Any, produced: Any) -> Any:
    return ["null", produced] if isinstance(source, list) and "null" in source else produced


def _shown(avro_type: Any) -> str:
    base = base_type(avro_type)
    if isinstance(base, dict):
        return str(base.get("logicalType") or base.get("type"))
    return str(base)


def read_hash_keys(path: Path | str | None) -> dict[str, bytes]:
    """The secrets of a manifest's keyed hashes from their JSON file (name -> secret); never
    logged. No file, no secrets."""
    if path is None:
        return {}
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {str(name): str(secret).encode() for name, secret in raw.items()}
