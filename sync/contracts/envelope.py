"""The change-event envelope around a contract's row record.

Field names follow Debezium's envelope (``before``, ``after``, ``source``, ``op``, ``ts_ms``,
``transaction``) so tools that understand Debezium events read ours. ``source.lsn`` is the
commit LSN of the change's transaction and ``source.event_index`` its position inside it: the
pair is the version a replica row keeps.

``op`` is a string, not an Avro enum, so a reader that predates an op code still decodes the
envelope (and can refuse the op by itself): adding ``t`` for truncate changed no schema.
"""

from __future__ import annotations

import copy
from typing import Any

from sync.contracts.loader import Contract

SOURCE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Source",
    "namespace": "vn.gov.govsync",
    "doc": "Where and when the change was committed in its source database.",
    "fields": [
        {"name": "version", "type": "string", "doc": "govsync version that captured it."},
        {"name": "connector", "type": "string", "doc": "Kind of source: postgresql."},
        {"name": "name", "type": "string", "doc": "Source name in the federation manifest."},
        {"name": "ts_ms", "type": "long", "doc": "Commit time, milliseconds since the epoch."},
        {"name": "ts_us", "type": "long", "doc": "Commit time, microseconds since the epoch."},
        {
            "name": "snapshot",
            "type": "string",
            "default": "false",
            "doc": "'true' when the row was read by a snapshot, else 'false'.",
        },
        {"name": "db", "type": "string", "doc": "Source database name."},
        {"name": "schema", "type": "string", "doc": "Source schema name."},
        {"name": "table", "type": "string", "doc": "Source table name."},
        {
            "name": "txId",
            "type": ["null", "long"],
            "default": None,
            "doc": "Source transaction id.",
        },
        {"name": "lsn", "type": "long", "doc": "Commit LSN of the transaction (the version)."},
        {
            "name": "event_index",
            "type": "int",
            "doc": "Position of the change inside its transaction; 0 for snapshot rows.",
        },
    ],
}

TRANSACTION_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "TransactionBlock",
    "namespace": "vn.gov.govsync",
    "doc": "The source transaction the change belongs to.",
    "fields": [
        {"name": "id", "type": "string", "doc": "Transaction id as text."},
        {"name": "total_order", "type": "long", "doc": "Position among all its changes."},
        {
            "name": "data_collection_order",
            "type": "long",
            "doc": "Position among its changes to this table.",
        },
        {
            "name": "event_counts",
            "type": {"type": "map", "values": "long"},
            "default": {},
            "doc": "How many events the transaction published on each topic: a consumer "
            "holding that many applies the transaction at once.",
        },
    ],
}


def envelope_schema(contract: Contract) -> dict[str, Any]:
    """The value schema registered under ``<topic>-value``."""
    row = copy.deepcopy(contract.row_schema)
    row_name = f"{row.get('namespace', '')}.{row['name']}".lstrip(".")
    return {
        "type": "record",
        "name": f"{row['name']}Envelope",
        "namespace": row.get("namespace", ""),
        "doc": f"A committed change to one {contract.entity} row ({contract.topic}).",
        "fields": [
            {
                "name": "before",
                "type": ["null", row],
                "default": None,
                "doc": "The row before the change; null for inserts and snapshot reads.",
            },
            {
                "name": "after",
                "type": ["null", row_name],
                "default": None,
                "doc": "The row after the change; null for deletes.",
            },
            {"name": "source", "type": SOURCE_SCHEMA, "doc": "Where the change comes from."},
            {
                "name": "op",
                "type": "string",
                "doc": "c = create, u = update, d = delete, r = snapshot read, "
                "t = truncate (the whole table emptied; no key, no before, no after).",
            },
            {
                "name": "ts_ms",
                "type": ["null", "long"],
                "default": None,
                "doc": "When govsync processed the change, milliseconds since the epoch.",
            },
            {
                "name": "transaction",
                "type": ["null", TRANSACTION_SCHEMA],
                "default": None,
                "doc": "The source transaction, absent for snapshot reads.",
            },
        ],
    }
