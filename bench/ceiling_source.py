"""Raw ceilings of the source side: reading pgoutput from a slot into Python, and decoding it
into change events, with the connector's own :class:`SlotReader` and :class:`ChangeDecoder`."""

from __future__ import annotations

import psycopg

from bench.data import insert_rows, prepare_source
from bench.timing import Figure, rate, timed
from connectors.postgres.changes import ChangeDecoder
from connectors.postgres.slot import SlotReader
from sync.contracts import Contract
from sync.types import ChangeEvent, TableRef

SLOT = "bench_ceiling"
ROWS_PER_TXN = 1_000  # the streaming backlog commits the same way


def measure_source(
    dsn: str, contract: Contract, rows: int
) -> tuple[dict[str, Figure], list[ChangeEvent]]:
    """``rows`` inserted after the slot exists, then read in one peek and decoded. Returns the
    figures and the decoded events (real citizen events for the later stages)."""
    table = TableRef("public", contract.source_table)
    with psycopg.connect(dsn, autocommit=True) as conn:
        prepare_source(conn, contract)
    with SlotReader(dsn, SLOT, SLOT, "population") as reader:
        reader.ensure_publication([(table.schema, table.name)])
        reader.ensure_slot()
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                insert_rows(conn, contract, 0, rows, ROWS_PER_TXN)
            peeked, read_s = timed(lambda: reader.peek(rows * 2 + 10_000))
            decoder = ChangeDecoder("population", {table: contract.key_fields})
            batch, decode_s = timed(lambda: decoder.decode(peeked.messages))
        finally:
            reader.drop_slot()
    if len(batch.events) != rows:
        raise RuntimeError(f"decoded {len(batch.events)} events from {rows} inserted rows")
    figures = {
        "pgoutput_read": rate("pgoutput peek into Python", "connector", rows, read_s),
        "pgoutput_decode": rate("pgoutput decode (ChangeDecoder)", "connector", rows, decode_s),
    }
    figures["pgoutput_read"]["messages"] = len(peeked.messages)
    return figures, batch.events
