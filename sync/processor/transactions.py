"""Source transactions applied whole: a transaction's events are spread over partitions (by
key) and topics (by table), so they reach a processor in different batches. Every event says
how many events its transaction published on each topic; the events of a transaction that
this subscriber reads are held back until all of them are there, and then applied in one
replica transaction with the rest of the batch.

What is held is not committed: the committed offset of a partition stays at its oldest held
event, so a crash or another worker taking over brings the held events again.

Waiting has limits. A transaction with more events than ``max_events`` is applied as it comes
(holding it would hold that much memory). A transaction still incomplete after ``max_wait``
seconds is applied as far as it arrived: an event of it may have been dead-lettered before its
transaction was known.

Holding needs one reader of all of the agency's partitions: the agency's active member, the
only one that reads, and it reads every partition (:mod:`sync.processor.membership`). A caller
that knows it reads only part passes ``whole=False``, and nothing is held.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sync.replica import Delivery
from sync.types import Lsn

TransactionKey = tuple[str, Lsn]  # source, commit LSN
REMEMBERED = 10_000  # released transactions whose late copies pass without waiting


@dataclass
class _Pending:
    expected: int
    since: float
    deliveries: dict[int, Delivery] = field(default_factory=dict)  # by index in the transaction


class TransactionHoldback:
    """The held events of one subscriber; pure bookkeeping, no I/O."""

    def __init__(
        self,
        topics: Collection[str],
        max_events: int = 10_000,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topics = frozenset(topics)
        self.max_events = max_events
        self.max_wait = max_wait
        self.clock = clock
        self._pending: dict[TransactionKey, _Pending] = {}
        # transactions released lately: a copy arriving after (a truncate reaches every
        # partition; a redelivery) applies at once, as a no-op, instead of waiting again
        self._released: OrderedDict[TransactionKey, None] = OrderedDict()

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    @property
    def held_events(self) -> int:
        return sum(len(p.deliveries) for p in self._pending.values())

    def admit(self, deliveries: Sequence[Delivery], whole: bool = True) -> list[Delivery]:
        """What to apply now: events that need no waiting, and every event of the
        transactions these complete. ``whole``: this worker reads all of the agency's
        partitions (otherwise nothing is held)."""
        ready: list[Delivery] = []
        now = self.clock()
        for delivery in deliveries:
            event = delivery.event
            expected = sum(count for t, count in event.tx_events.items() if t in self.topics)
            if not whole or expected <= 1 or expected > self.max_events:
                ready.append(delivery)
                continue
            key = (event.source, event.position.lsn)
            if key in self._released:
                ready.append(delivery)
                continue
            pending = self._pending.setdefault(key, _Pending(expected, now))
            # a duplicate (the same index again) is not counted twice
            pending.deliveries.setdefault(event.position.index, delivery)
            if len(pending.deliveries) >= pending.expected:
                ready += self._pending.pop(key).deliveries.values()
                self._remember(key)
        return ready

    def _remember(self, key: TransactionKey) -> None:
        self._released[key] = None
        while len(self._released) > REMEMBERED:
            self._released.popitem(last=False)

    def expired(self) -> tuple[list[Delivery], int]:
        """The events of transactions held longer than ``max_wait``, and how many
        transactions they are."""
        now = self.clock()
        late = [k for k, p in self._pending.items() if now - p.since >= self.max_wait]
        released = [d for k in late for d in self._pending.pop(k).deliveries.values()]
        for key in late:
            self._remember(key)
        return released, len(late)

    def held_from(self) -> dict[tuple[str, int], int]:
        """The oldest held offset per partition: the highest offset that may be committed."""
        oldest: dict[tuple[str, int], int] = {}
        for pending in self._pending.values():
            for d in pending.deliveries.values():
                where = (d.topic, d.partition)
                oldest[where] = min(oldest.get(where, d.offset), d.offset)
        return oldest

    def keep_only(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget what was read from partitions this worker no longer reads: their next
        reader reads it again from the committed offset."""
        owned = set(partitions)
        for key, pending in list(self._pending.items()):
            pending.deliveries = {
                i: d for i, d in pending.deliveries.items() if (d.topic, d.partition) in owned
            }
            if not pending.deliveries:
                del self._pending[key]
