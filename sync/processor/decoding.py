"""Decoding and projecting one agency's batch of messages, with no I/O besides the writer-schema
lookup passed in.

messages -> deliveries (what to apply, or only to count when the projection skips the change)
+ dead letters (what cannot be decoded or projected, and why) + disclosures (what each record
would disclose once applied, when the agency's disclosures are audited).

Bytes and values from a topic can make a decoder or a transform raise anything, so any
exception one message raises makes that message a dead letter and the batch goes on. Only
:class:`~sync.errors.Retryable` errors pass (a schema the registry could not be asked for):
no message is to blame, and the batch is decoded again later.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sync.audit import Disclosure, disclosures_of
from sync.contracts import Contract, EventCodec
from sync.contracts.attributes import subject_fields
from sync.contracts.serde import SchemaLookup
from sync.errors import Retryable
from sync.kafka.deadletter import DeadLetter
from sync.policy import Projection
from sync.processor.decode_cache import DecodeCache
from sync.processor.letters import dead_letter
from sync.replica import Delivery
from sync.types import ChangeEvent

Coordinates = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def coordinates(self) -> Coordinates:
        return self.topic, self.partition, self.offset


@dataclass
class DecodedBatch:
    deliveries: list[Delivery] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    disclosures: dict[Coordinates, Disclosure] = field(default_factory=dict)
    filtered: Counter[str] = field(default_factory=Counter)  # skipped by the projection, by topic


class BatchDecoder:
    """One agency's view of its topics: the contracts' codecs and, under a manifest, the
    projections (by topic) of what the agency may receive. With a ``cache``, the worker's
    agencies decode each message once between them (see :mod:`~sync.processor.decode_cache`)
    and each projects it for itself."""

    def __init__(
        self,
        agency: str,
        contracts: Mapping[str, Contract],
        projections: Mapping[str, Projection] | None = None,
        audited: bool = False,
        cache: DecodeCache | None = None,
    ) -> None:
        self.agency = agency
        self.cache = cache
        self.codecs = {
            topic: EventCodec(contract) if cache is None else cache.codec(contract)
            for topic, contract in contracts.items()
        }
        self.subject_fields = {
            topic: subject_fields(c.row_schema, c.key_schema) for topic, c in contracts.items()
        }
        self.projections = dict(projections or {})
        self.audited = audited

    def schema_ids(self, messages: Iterable[RawMessage]) -> set[int]:
        """The writer schemas the messages refer to, to fetch before decoding. A message whose
        ids cannot be read is left out here and dead-lettered by :meth:`decode`."""
        wanted: set[int] = set()
        for m in messages:
            try:
                wanted |= self.codecs[m.topic].schema_ids(m.key, m.value)
            except Exception:  # noqa: BLE001 -- reported per message when decoding
                pass
        return wanted

    def decode(self, messages: Sequence[RawMessage], lookup: SchemaLookup) -> DecodedBatch:
        batch = DecodedBatch()
        for message in messages:
            self._decode_one(message, lookup, batch)
        return batch

    def _decode_one(self, m: RawMessage, lookup: SchemaLookup, batch: DecodedBatch) -> None:
        try:
            codec = self.codecs[m.topic]
            if self.cache is None:
                event = codec.decode(m.key, m.value, lookup)
            else:
                event = self.cache.decode(m.coordinates, m.key, m.value, codec, lookup)
        except Retryable:
            raise
        except Exception as exc:  # noqa: BLE001 -- whatever the bytes make a decoder raise
            batch.letters.append(
                dead_letter(self.agency, "decode_error", exc, m.coordinates, stage="decoding")
            )
            return
        projection = self.projections.get(m.topic)
        if projection is None:
            batch.deliveries.append(Delivery(event, m.topic, m.partition, m.offset))
        else:
            self._project(m, event, projection, batch)

    def _project(
        self, m: RawMessage, event: ChangeEvent, projection: Projection, batch: DecodedBatch
    ) -> None:
        try:
            projected = projection.project_event(event)
            disclosed = (
                disclosures_of(
                    event,
                    projected,
                    projection.subscription,
                    m.topic,
                    self.agency,
                    self.subject_fields[m.topic],
                )
                if self.audited
                else ()
            )
        except Retryable:
            raise
        except Exception as exc:  # noqa: BLE001 -- a transform or filter meeting an odd value
            letter = dead_letter(
                self.agency, "projection_error", exc, m.coordinates, event.event_id, "projecting"
            )
            batch.letters.append(letter)
            return
        if projected is None:
            # nothing reaches the replica; the offset is still recorded with the batch
            batch.filtered[m.topic] += 1
            batch.deliveries.append(Delivery(event, m.topic, m.partition, m.offset, False))
            return
        for disclosure in disclosed:
            batch.disclosures[m.coordinates] = disclosure
        batch.deliveries.append(Delivery(projected, m.topic, m.partition, m.offset))
