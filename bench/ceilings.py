"""Each stage alone on this machine, one after the other, in the benchmark's own process."""

from __future__ import annotations

import gc
import logging

from bench.ceiling_codec import measure_codec
from bench.ceiling_kafka import measure_kafka
from bench.ceiling_replica import measure_replica
from bench.ceiling_source import measure_source
from bench.session import Session
from bench.timing import Figure

log = logging.getLogger(__name__)


def measure_ceilings(session: Session, rows: int) -> dict[str, Figure]:
    """pgoutput read and decode, Avro encode and decode, raw produce and consume, COPY and the
    Applier merge, each on ``rows`` citizens."""
    log.info("raw ceilings on %d rows", rows)
    figures, events = measure_source(session.database("ceiling_source"), session.contract, rows)
    codec_figures, _encoded = measure_codec(session.contract, events)
    figures |= codec_figures
    del _encoded
    gc.collect()
    figures |= measure_kafka(
        session.stack.bootstrap, session.topic("ceiling"), rows, session.broker.replication
    )
    figures |= measure_replica(session.database("ceiling_replica"), session.contract, events)
    for name, figure in figures.items():
        log.info("  %-16s %12.0f %s/s", name, figure["rate"] or 0, figure["unit"])
    return figures
