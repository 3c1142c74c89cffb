"""Load the contracts in ``schemas/avro/<domain>/``: one ``<entity>.avsc`` row schema and one
``<entity>-key.avsc`` key schema per entity. The row schema carries govsync's own attributes
(``govsync.source``, ``govsync.table``) and a ``classification`` on every field."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync.errors import ContractError

CLASSIFICATIONS = ("public", "internal", "personal", "sensitive_personal")


@dataclass(frozen=True)
class Contract:
    """One entity's contract: its topic, its row and key schemas, where its rows come from."""

    domain: str
    entity: str
    row_schema: dict[str, Any]
    key_schema: dict[str, Any]
    path: Path
    compatibility: str = "FULL_TRANSITIVE"
    source_table: str = field(default="")

    @property
    def topic(self) -> str:
        return f"{self.domain}.{self.entity}"

    @property
    def value_subject(self) -> str:
        return f"{self.topic}-value"

    @property
    def key_subject(self) -> str:
        return f"{self.topic}-key"

    @property
    def key_fields(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.key_schema["fields"])

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.row_schema["fields"])


def default_schemas_dir() -> Path:
    """``GOVSYNC_SCHEMAS_DIR`` if set, else the repository's ``schemas/avro``."""
    configured = os.environ.get("GOVSYNC_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "schemas" / "avro"


def load_contracts(root: Path | None = None) -> dict[str, Contract]:
    """Every contract under ``root``, by topic name."""
    root = root or default_schemas_dir()
    contracts = {}
    for path in sorted(root.glob("*/*.avsc")):
        if path.stem.endswith("-key"):
            continue
        contract = load_contract(path)
        contracts[contract.topic] = contract
    return contracts


def load_contract(path: Path) -> Contract:
    row = _read_schema(path)
    key_path = path.with_name(f"{path.stem}-key.avsc")
    if not key_path.exists():
        raise ContractError(f"{path}: no key schema {key_path.name} beside it", contract=str(path))
    key = _read_schema(key_path)
    _check_key_in_row(path, row, key)
    return Contract(
        domain=path.parent.name,
        entity=path.stem,
        row_schema=row,
        key_schema=key,
        path=path,
        compatibility=row.get("govsync.compatibility", "FULL_TRANSITIVE"),
        source_table=row.get("govsync.table", path.stem),
    )


def _read_schema(path: Path) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the schema: {exc}", contract=str(path)) from exc
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ContractError(f"{path}: a contract must be an Avro record", contract=str(path))
    if not isinstance(schema.get("fields"), list):
        raise ContractError(f"{path}: the record has no list of fields", contract=str(path))
    return schema


def _check_key_in_row(path: Path, row: dict[str, Any], key: dict[str, Any]) -> None:
    row_fields = {f["name"]: f["type"] for f in row["fields"]}
    for key_field in key["fields"]:
        name = key_field["name"]
        if row_fields.get(name) != key_field["type"]:
            raise ContractError(
                f"{path}: key field {name!r} must appear in the row with the same type",
                contract=str(path),
                field=name,
            )
