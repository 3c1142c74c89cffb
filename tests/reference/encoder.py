"""The connector's Avro encoding as it was before its fast path: the whole envelope as one record
through fastavro's schemaless writer. Kept only for the tests that prove the fast path writes the
same bytes and refuses the same events."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from sync import __version__
from sync.contracts import EventCodec, frame
from sync.errors import ContractError
from sync.types import ChangeEvent, Op

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference_encode(
    codec: EventCodec, event: ChangeEvent, key_id: int, value_id: int
) -> tuple[bytes | None, bytes]:
    """(key bytes, value bytes) for ``event``, framed with the registered schema ids. A
    truncate concerns no one row: it has no key (None), as in Debezium."""
    key_buf, value_buf = io.BytesIO(), io.BytesIO()
    try:
        if event.op is not Op.TRUNCATE:
            fastavro.schemaless_writer(key_buf, codec._key_parsed, dict(event.key))
        fastavro.schemaless_writer(value_buf, codec._value_parsed, reference_record(codec, event))
    except Exception:  # noqa: BLE001 -- fastavro raises whatever the value makes it raise
        # fastavro's message quotes the whole row: name the field, never the values
        field, problem = codec._misfit(event)
        raise ContractError(
            f"a change to {event.table} does not fit contract {codec.contract.topic}: {problem}",
            contract=codec.contract.topic,
            field=field,
        ) from None
    key = None if event.op is Op.TRUNCATE else frame(key_id, key_buf.getvalue())
    return key, frame(value_id, value_buf.getvalue())


def reference_record(codec: EventCodec, event: ChangeEvent) -> dict[str, Any]:
    micros = (event.commit_time - _EPOCH) // timedelta(microseconds=1)
    snapshot = event.op is Op.READ
    return {
        "before": dict(event.before) if event.before is not None else None,
        "after": dict(event.after) if event.after is not None else None,
        "source": {
            "version": __version__,
            "connector": "postgresql",
            "name": event.source,
            "ts_ms": micros // 1000,
            "ts_us": micros,
            "snapshot": "true" if snapshot else "false",
            "db": codec.source_db,
            "schema": event.table.schema,
            "table": event.table.name,
            "txId": event.txid or None,
            "lsn": int(event.position.lsn),
            "event_index": event.position.index,
        },
        "op": event.op.value,
        "ts_ms": int(time.time() * 1000),
        "transaction": None
        if snapshot
        else {
            "id": str(event.txid),
            "total_order": event.position.index,
            "data_collection_order": event.position.index,
            "event_counts": dict(event.tx_events),
        },
    }
