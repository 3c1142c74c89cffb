"""Contract review, the verdicts: whether each compatibility level accepts a proposed schema
after a subject's history, with Apache Avro's reasons when it does not (the same checker the
registry uses, through :mod:`sync.contracts.compatibility`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from avro.schema import Schema as AvroSchema

from sync.contracts.compatibility import LEVELS, Level, check


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether ``level`` accepts the proposed schema, and Avro's reasons when it does not."""

    level: Level
    compatible: bool
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "compatible": self.compatible,
            "reasons": list(self.reasons),
        }


def verdicts(candidate: AvroSchema, history: Sequence[tuple[int, AvroSchema]]) -> list[Verdict]:
    """A verdict per compatibility level for ``candidate`` after ``history`` (version, schema),
    newest first: non-transitive levels against the newest version, transitive ones against
    every version, as the registry decides."""
    out = []
    for level in LEVELS:
        reasons = check(level, candidate, history, explain=True)
        out.append(Verdict(level, not reasons, tuple(reasons)))
    return out
