"""What ``govsync manifest preview`` shows: each of an agency's subscriptions as the agency
would receive it, its projected schema and a sample of real source rows projected by the
processor's own code.

A sample row takes the processor's path: it is read from the source table as the snapshot
reads it (json as its text, far dates as carried), encoded as a change event with the topic's
contract and decoded again, then passed through :meth:`Projection.project_event`. Only the
projected row is kept, so nothing the agency does not receive can be shown; the rows are read
with the subscription's row filter, so the sample holds only rows the agency would receive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from sync.contracts import Contract, EventCodec
from sync.contracts.avro_types import describe
from sync.errors import ConfigError, ContractError, DecodeError
from sync.policy import Manifest, Projection, Subscription, project_schema
from sync.temporal import register_pg_adapters
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

_KEY_ID, _VALUE_ID = 1, 2
_POSITION = Position(Lsn(0), 0)
_PREVIEW_SOURCE = "preview"


@dataclass(frozen=True, slots=True)
class PreviewField:
    """A field the agency receives: its type and transform in words, its classification and
    its doc as the projected contract gives them."""

    name: str
    type: str
    transform: str
    classification: str
    doc: str


@dataclass(slots=True)
class SubscriptionPreview:
    """One subscription as the agency would receive it. ``problem`` says why there are no
    rows (the source is not in the stack, a hash key has no secret), empty otherwise."""

    topic: str
    purpose: str
    legal_basis: str
    row_filter: str | None
    fields: list[PreviewField]
    rows: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""

    def to_json(self, value: Callable[[Any], Any]) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "row_filter": self.row_filter,
            "fields": [
                {
                    "name": f.name,
                    "type": f.type,
                    "transform": f.transform,
                    "classification": f.classification,
                    "doc": f.doc,
                }
                for f in self.fields
            ],
            "rows": [{name: value(v) for name, v in row.items()} for row in self.rows],
            "problem": self.problem,
        }


def preview_agency(
    manifest: Manifest,
    contracts: Mapping[str, Contract],
    secrets: Mapping[str, bytes],
    source_dsn: Callable[[str], str],
    agency: str,
    sample: int,
) -> list[SubscriptionPreview]:
    """Each of ``agency``'s subscriptions with up to ``sample`` projected rows, read from the
    database ``source_dsn(source name)`` gives (a :class:`ConfigError` when there is none)."""
    previews = []
    for subscription in manifest.subscriptions_of(agency):
        contract = contracts[subscription.topic]
        preview = _described(contract, subscription)
        try:
            projection = Projection(contract, subscription, secrets)
            dsn = source_dsn(_source_name(manifest, subscription.topic))
            preview.rows = _sample_rows(dsn, projection, sample)
        except ConfigError as exc:
            preview.problem = str(exc)
        previews.append(preview)
    return previews


def _described(contract: Contract, subscription: Subscription) -> SubscriptionPreview:
    schema = project_schema(contract, subscription)
    fields = [
        PreviewField(
            name=f["name"],
            type=describe(f["type"]),
            transform=subscription.transforms[f["name"]].describe()
            if f["name"] in subscription.transforms
            else "",
            classification=str(f.get("classification", "")),
            doc=str(f.get("doc", "")),
        )
        for f in schema["fields"]
    ]
    return SubscriptionPreview(
        subscription.topic,
        subscription.purpose,
        subscription.legal_basis,
        subscription.row_filter,
        fields,
    )


def _source_name(manifest: Manifest, topic: str) -> str:
    for source in manifest.sources:
        if topic in source.topics:
            return source.name
    raise ConfigError(f"no source in the manifest publishes {topic!r}")


def _sample_rows(dsn: str, projection: Projection, sample: int) -> list[dict[str, Any]]:
    """Up to ``sample`` rows of the source table that pass the filter, in key order,
    projected as the processor projects a snapshot read."""
    contract = projection.source
    codec = EventCodec(contract, source_db=_PREVIEW_SOURCE)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, contract.field_names)),
        sql.Identifier("public", contract.source_table),
    )
    condition = projection.filter_sql()
    if condition is not None:
        query = sql.SQL("{} WHERE {}").format(query, condition)
    query = sql.SQL("{} ORDER BY {} LIMIT {}").format(
        query, sql.SQL(", ").join(map(sql.Identifier, contract.key_fields)), sql.Literal(sample)
    )
    projected = []
    with _source(dsn) as conn, conn.cursor() as cursor:
        try:
            cursor.execute(query)
        except psycopg.errors.UndefinedTable:
            raise ConfigError(f"the source database has no table {contract.source_table}") from None
        for values in cursor:
            row = dict(zip(contract.field_names, values, strict=True))
            event = projection.project_event(_as_received(codec, row))
            if event is not None and event.after is not None:
                projected.append(dict(event.after))
    return projected


def _as_received(codec: EventCodec, row: dict[str, Any]) -> ChangeEvent:
    """``row`` as the processor decodes it: a snapshot read through the contract's Avro."""
    key = {name: row[name] for name in codec.contract.key_fields}
    event = ChangeEvent(
        op=Op.READ,
        table=TableRef("public", codec.contract.source_table),
        key=key,
        before=None,
        after=row,
        position=_POSITION,
        txid=0,
        commit_time=datetime.now(UTC),
        event_id=ChangeEvent.make_event_id(_PREVIEW_SOURCE, _POSITION, key),
        source=_PREVIEW_SOURCE,
    )
    schemas = {_KEY_ID: codec.contract.key_schema, _VALUE_ID: codec.value_schema}

    def lookup(schema_id: int) -> Mapping[str, Any]:
        if schema_id not in schemas:
            raise DecodeError(f"unknown schema id {schema_id}")
        return schemas[schema_id]

    try:
        key_bytes, value_bytes = codec.encode(event, _KEY_ID, _VALUE_ID)
    except ContractError as exc:
        raise ConfigError(f"a source row does not fit its contract: {exc}") from None
    return codec.decode(key_bytes, value_bytes, lookup)


@contextmanager
def _source(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(dsn)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to the source database: {exc}") from None
    with conn:
        conn.read_only = True
        conn.adapters.register_loader("json", TextLoader)  # as pgoutput sends them
        conn.adapters.register_loader("jsonb", TextLoader)
        register_pg_adapters(conn)  # dates and times beyond Python's, as carried
        yield conn
