"""Sameness stricter than ``==``: the same type, the same value, NaN as NaN, a Decimal's exponent,
a datetime's time zone object, an Uncarried's text and reason."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from connectors.postgres.changes import DecodedBatch
from sync.temporal import Uncarried
from sync.types import ChangeEvent


def assert_same_value(new: Any, old: Any, where: str = "value") -> None:
    assert type(new) is type(old), f"{where}: {type(new).__name__} != {type(old).__name__}"
    if isinstance(old, float):
        assert (math.isnan(new) and math.isnan(old)) or repr(new) == repr(old), where
    elif isinstance(old, Decimal):
        assert new.compare_total(old) == 0, where
    elif isinstance(old, Uncarried):
        assert (new.text, new.reason) == (old.text, old.reason), where
    elif isinstance(old, list):
        assert len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(old, Mapping):
        assert list(new) == list(old), where
        for key in old:
            assert_same_value(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, datetime | time):
        assert (new, new.tzinfo, new.fold) == (old, old.tzinfo, old.fold), where
    elif isinstance(old, date | int | str | bytes):
        assert new == old, where
    else:
        assert new is old or new == old, where


def assert_same_events(new: list[ChangeEvent], old: list[ChangeEvent]) -> None:
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        for name in ("op", "table", "position", "txid", "commit_time", "event_id", "source"):
            assert getattr(a, name) == getattr(b, name), name
        assert_same_value(a.key, b.key, "key")
        assert_same_value(a.before, b.before, "before")
        assert_same_value(a.after, b.after, "after")
        assert a.tx_events == b.tx_events


def assert_same_batch(new: DecodedBatch, old: DecodedBatch) -> None:
    assert_same_events(new.events, old.events)
    assert (new.end_lsn, new.captured, new.relations) == (old.end_lsn, old.captured, old.relations)
