"""Raw ceiling of Avro: :class:`EventCodec` encoding and decoding citizen events, framed in the
Confluent wire format, with writer schemas already at hand (as the processor caches them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.timing import Figure, rate, timed
from sync.contracts import Contract, EventCodec, envelope_schema
from sync.types import ChangeEvent

KEY_ID, VALUE_ID = 1, 2


def measure_codec(
    contract: Contract, events: Sequence[ChangeEvent]
) -> tuple[dict[str, Figure], list[tuple[bytes | None, bytes]]]:
    """Figures, and the encoded (key, value) pairs."""
    codec = EventCodec(contract, source_db="population")
    encoded, encode_s = timed(lambda: [codec.encode(e, KEY_ID, VALUE_ID) for e in events])
    schemas: Mapping[int, Mapping[str, Any]] = {
        KEY_ID: contract.key_schema,
        VALUE_ID: envelope_schema(contract),
    }
    decoded, decode_s = timed(
        lambda: [codec.decode(key, value, schemas.__getitem__) for key, value in encoded]
    )
    assert len(decoded) == len(events)
    count = len(events)
    figures = {
        "avro_encode": rate("Avro encode (EventCodec)", "connector", count, encode_s, "events"),
        "avro_decode": rate("Avro decode (EventCodec)", "processor", count, decode_s, "events"),
    }
    sizes = [len(value) for _, value in encoded]
    figures["avro_encode"]["mean_value_bytes"] = round(sum(sizes) / max(1, len(sizes)))
    return figures, encoded
