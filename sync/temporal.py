"""Dates and times PostgreSQL holds but Python's ``date``, ``time`` and ``datetime`` cannot:
``infinity`` and ``-infinity``, years before 1 AD (BC) or after 9999, and ``24:00:00``.

Every stage carries them as the integer the Avro contract already uses for the type -- days
since 1970-01-01 for ``date``, microseconds since 1970-01-01 00:00 for the timestamps,
microseconds since midnight for ``time`` -- wrapped in a class that knows its PostgreSQL text:

=====================  ==============================  =====================================
PostgreSQL type        Avro logical type               beyond Python's range, carried as
=====================  ==============================  =====================================
date                   date (int)                      :class:`FarDate`; ``infinity`` is
                                                       2**31-1, ``-infinity`` -2**31
timestamp              local-timestamp-micros (long)   :class:`FarTimestamp`; ``infinity`` is
                                                       2**63-1, ``-infinity`` -2**63
timestamptz            timestamp-micros (long)         :class:`FarTimestampTz`, the same
time                   time-micros (long)              :class:`FarTime` (only ``24:00:00``)
=====================  ==============================  =====================================

The infinities are the extremes of the Avro integer, as Debezium carries infinite timestamps,
so an Avro reader that knows nothing of govsync still orders them right. Every finite
PostgreSQL date fits an Avro ``date``. Timestamps in the last ~29 years of PostgreSQL's range
(after 294247-01-10 04:00:54.775807 UTC) do not fit a ``long`` of microseconds since 1970:
they are :class:`Uncarried`, which no contract encodes, so the connector dead-letters that
change instead of inventing a value (see ``docs/value-mapping.md``).

Because the classes are ``int`` subclasses, fastavro writes them as they are; reading, the
logical-type readers installed by :func:`install_avro_readers` return them wherever fastavro's
own would fail. :func:`register_pg_adapters` teaches a psycopg connection to write them to
PostgreSQL and to read them back, so snapshot reads, replicas and ``govsync verify`` agree with
the stream. This module imports nothing else of ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, ClassVar, Final

INT32_MAX: Final = 2**31 - 1
INT32_MIN: Final = -(2**31)
INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)

_MICROS_PER_DAY: Final = 86_400_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; ``year`` is astronomical (1 BC is
    year 0), the calendar PostgreSQL uses for every date."""
    year -= month <= 2
    era = year // 400  # floor division: Python's // already rounds down
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of ``days`` since 1970-01-01."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def pg_year(astronomical: int) -> int:
    """The year as PostgreSQL's ``extract(year ...)`` gives it: there is no year 0, 1 BC is -1."""
    return astronomical if astronomical > 0 else astronomical - 1


class FarValue(int):
    """A date or time beyond Python's types, as the integer its Avro type carries."""

    __slots__ = ()
    POSITIVE_INFINITY: ClassVar[int]
    NEGATIVE_INFINITY: ClassVar[int]
    family: ClassVar[str]  # what it compares with in a row filter

    @property
    def infinite(self) -> bool:
        return int(self) in (self.POSITIVE_INFINITY, self.NEGATIVE_INFINITY)

    def _infinity_text(self) -> str | None:
        if int(self) == self.POSITIVE_INFINITY:
            return "infinity"
        if int(self) == self.NEGATIVE_INFINITY:
            return "-infinity"
        return None

    @property
    def text(self) -> str:
        """PostgreSQL's ISO text of the value."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


def _date_text(days: int) -> tuple[str, str]:
    year, month, day = civil_from_days(days)
    era = ""
    if year <= 0:
        year, era = 1 - year, " BC"
    return f"{year:04d}-{month:02d}-{day:02d}", era


def _time_text(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{fraction:06d}".rstrip("0") if fraction else text


class FarDate(FarValue):
    """A ``date`` as days since 1970-01-01."""

    __slots__ = ()
    POSITIVE_INFINITY = INT32_MAX
    NEGATIVE_INFINITY = INT32_MIN
    family = "date"

    @property
    def text(self) -> str:
        special = self._infinity_text()
        if special is not None:
            return special
        day, era = _date_text(int(self))
        return day + era


class FarTimestamp(FarValue):
    """A ``timestamp`` (without time zone) as microseconds since 1970-01-01 00:00."""

    __slots__ = ()
    POSITIVE_INFINITY = INT64_MAX
    NEGATIVE_INFINITY = INT64_MIN
    family = "local_timestamp"
    _zone: ClassVar[str] = ""

    @property
    def text(self) -> str:
        special = self._infinity_text()
        if special is not None:
            return special
        days, micros = divmod(int(self), _MICROS_PER_DAY)
        day, era = _date_text(days)
        return f"{day} {_time_text(micros)}{self._zone}{era}"


class FarTimestampTz(FarTimestamp):
    """A ``timestamptz`` as microseconds since 1970-01-01 00:00 UTC (printed in UTC)."""

    __slots__ = ()
    family = "timestamp"
    _zone = "+00"


class FarTime(FarValue):
    """A ``time`` as microseconds since midnight: only ``24:00:00`` is beyond Python's."""

    __slots__ = ()
    POSITIVE_INFINITY = INT64_MAX  # time has no infinity; never used
    NEGATIVE_INFINITY = INT64_MIN
    family = "time"

    @property
    def text(self) -> str:
        return _time_text(int(self))


class Uncarried:
    """A value of the source that its contract's type cannot carry (a timestamp past the
    Avro ``long``, text that does not parse as its type). No contract encodes it, so the
    change is dead-lettered; written back to PostgreSQL (``govsync verify`` stages the source)
    it is its own text. ``reason`` names the problem, never the value."""

    __slots__ = ("reason", "text")

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Uncarried) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Uncarried({self.reason!r})"  # never the value: it may be personal data


# -- PostgreSQL's ISO text -------------------------------------------------------------------

_DATE: Final = r"(?P<year>\d{4,})-(?P<month>\d\d)-(?P<day>\d\d)"
_TIME: Final = r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d{1,6}))?"
_OFFSET: Final = r"(?P<sign>[+-])(?P<off_h>\d\d)(?::(?P<off_m>\d\d))?(?::(?P<off_s>\d\d))?"
_BC: Final = r"(?P<bc> BC)?"
_DATE_RE: Final = re.compile(_DATE + _BC)
_TIME_RE: Final = re.compile(_TIME)
_TIMESTAMP_RE: Final = re.compile(_DATE + " " + _TIME + _BC)
_TIMESTAMPTZ_RE: Final = re.compile(_DATE + " " + _TIME + _OFFSET + _BC)


def _match(pattern: re.Pattern[str], text: str, what: str) -> re.Match[str]:
    found = pattern.fullmatch(text)
    if found is None:
        raise ValueError(f"not an ISO {what}")
    return found


def _days(found: re.Match[str]) -> int:
    year, month, day = int(found["year"]), int(found["month"]), int(found["day"])
    if not (1 <= month <= 12 and 1 <= day <= 31) or year == 0:
        raise ValueError("month or day out of range")
    astronomical = 1 - year if found["bc"] else year
    days = days_from_civil(astronomical, month, day)
    if civil_from_days(days) != (astronomical, month, day):
        raise ValueError("no such day in that month")
    return days


def _micros_of_day(found: re.Match[str]) -> int:
    hour, minute, second = int(found["hour"]), int(found["minute"]), int(found["second"])
    micros = int((found["fraction"] or "0").ljust(6, "0"))
    total = ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros
    if minute > 59 or second > 60 or total > _MICROS_PER_DAY:
        raise ValueError("time of day out of range")
    return total


def _offset_micros(found: re.Match[str]) -> int:
    seconds = int(found["off_h"]) * 3600 + int(found["off_m"] or 0) * 60 + int(found["off_s"] or 0)
    return (-seconds if found["sign"] == "-" else seconds) * 1_000_000


def _plain_date(days: int) -> date | None:
    ordinal = days + _EPOCH_ORDINAL
    return date.fromordinal(ordinal) if 1 <= ordinal <= date.max.toordinal() else None


def parse_date(text: str) -> date | FarDate:
    """A PostgreSQL ``date`` in ISO text; raises ValueError for text that is not one."""
    if text == "infinity":
        return FarDate(INT32_MAX)
    if text == "-infinity":
        return FarDate(INT32_MIN)
    days = _days(_match(_DATE_RE, text, "date"))
    plain = _plain_date(days)
    return plain if plain is not None else FarDate(days)


def parse_time(text: str) -> time | FarTime:
    micros = _micros_of_day(_match(_TIME_RE, text, "time"))
    if micros == _MICROS_PER_DAY:
        return FarTime(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60, fraction)


def _timestamp(
    text: str, pattern: re.Pattern[str], far: type[FarTimestamp], what: str
) -> tuple[int, re.Match[str]] | FarTimestamp | Uncarried:
    if text == "infinity":
        return far(INT64_MAX)
    if text == "-infinity":
        return far(INT64_MIN)
    found = _match(pattern, text, what)
    micros = _days(found) * _MICROS_PER_DAY + _micros_of_day(found)
    if found.groupdict().get("sign"):
        micros -= _offset_micros(found)
    if not INT64_MIN < micros < INT64_MAX:
        return Uncarried(text, f"a {what} beyond the range of an Avro long of microseconds")
    return micros, found


def parse_timestamp(text: str) -> datetime | FarTimestamp | Uncarried:
    """A ``timestamp`` (without time zone) in ISO text, as a naive datetime where it fits."""
    parsed = _timestamp(text, _TIMESTAMP_RE, FarTimestamp, "timestamp")
    if not isinstance(parsed, tuple):
        return parsed
    micros, _ = parsed
    plain = _plain_datetime(micros)
    return plain.replace(tzinfo=None) if plain is not None else FarTimestamp(micros)


def parse_timestamptz(text: str) -> datetime | FarTimestampTz | Uncarried:
    """A ``timestamptz`` in ISO text with any UTC offset, as an aware datetime in UTC."""
    parsed = _timestamp(text, _TIMESTAMPTZ_RE, FarTimestampTz, "timestamp with time zone")
    if not isinstance(parsed, tuple):
        return parsed  # type: ignore[return-value]  # _timestamp made it a FarTimestampTz
    micros, _ = parsed
    plain = _plain_datetime(micros)
    return plain if plain is not None else FarTimestampTz(micros)


def _plain_datetime(micros: int) -> datetime | None:
    days, of_day = divmod(micros, _MICROS_PER_DAY)
    day = _plain_date(days)
    if day is None:
        return None
    return datetime.combine(day, time(), UTC) + timedelta(microseconds=of_day)


# -- Avro: fastavro's logical-type readers -----------------------------------------------------

_AVRO_FAR: Final[dict[str, type[FarValue]]] = {
    "int-date": FarDate,
    "long-timestamp-micros": FarTimestampTz,
    "long-local-timestamp-micros": FarTimestamp,
    "long-time-micros": FarTime,
}


def _tolerant(
    read: Callable[[Any, Any, Any], Any], far: type[FarValue]
) -> Callable[[Any, Any, Any], Any]:
    def read_or_far(data: Any, writer_schema: Any = None, reader_schema: Any = None) -> Any:
        try:
            return read(data, writer_schema, reader_schema)
        except (ValueError, OverflowError):
            return far(data)

    read_or_far.govsync_far = True  # type: ignore[attr-defined]
    return read_or_far


def install_avro_readers() -> None:
    """Make fastavro's readers of date and time logical types return a :class:`FarValue`
    where a Python value cannot hold the integer, instead of raising (fastavro's documented
    hook for logical types, ``fastavro.read.LOGICAL_READERS``). In-range values read exactly
    as before. Idempotent."""
    from fastavro.read import LOGICAL_READERS

    for name, far in _AVRO_FAR.items():
        current = LOGICAL_READERS[name]
        if not getattr(current, "govsync_far", False):
            LOGICAL_READERS[name] = _tolerant(current, far)


# -- psycopg: writing and reading them ---------------------------------------------------------


def register_pg_adapters(context: Any) -> None:
    """Teach a psycopg connection (or cursor, or adapters map) to write :class:`FarValue` and
    :class:`Uncarried` values and to read the values Python's types cannot hold as they are
    carried: text dates, times and timestamps that psycopg's own loaders refuse (``infinity``,
    BC, years after 9999, ``24:00:00``) come back through :func:`parse_date` and its kin."""
    adapters = getattr(context, "adapters", context)
    dumpers, loaders = _pg_adapters()
    for cls, dumper in dumpers:
        adapters.register_dumper(cls, dumper)
    for type_name, loader in loaders:
        adapters.register_loader(type_name, loader)


@cache
def _pg_adapters() -> tuple[list[tuple[type, type]], list[tuple[str, type]]]:
    """The dumper and loader classes, built once for every connection that registers them."""
    from psycopg import adapters as default_adapters
    from psycopg import postgres
    from psycopg.adapt import Dumper, Loader
    from psycopg.errors import DataError
    from psycopg.pq import Format

    def dumper(type_name: str) -> type[Dumper]:
        class TextDumper(Dumper):
            oid = postgres.types[type_name].oid

            def dump(self, obj: Any) -> bytes:
                return str(obj.text).encode()

        return TextDumper

    def loader(type_name: str, parse: Callable[[str], Any]) -> type[Loader]:
        fast_class = default_adapters.get_loader(postgres.types[type_name].oid, Format.TEXT)

        class FallbackLoader(Loader):
            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._fast = fast_class(oid, context) if fast_class is not None else None

            def load(self, data: Any) -> Any:
                if self._fast is not None:
                    try:
                        return self._fast.load(data)
                    except (DataError, NotImplementedError):
                        pass  # beyond Python's range, or a DateStyle psycopg cannot read
                text = bytes(data).decode()
                try:
                    return parse(text)
                except ValueError:
                    return Uncarried(text, f"text that does not parse as a {type_name}")

        return FallbackLoader

    dumpers = [
        (FarDate, dumper("date")),
        (FarTimestamp, dumper("timestamp")),
        (FarTimestampTz, dumper("timestamptz")),
        (FarTime, dumper("time")),
        (Uncarried, dumper("text")),
    ]
    loaders = [
        (name, loader(name, parse))
        for name, parse in (
            ("date", parse_date),
            ("time", parse_time),
            ("timestamp", parse_timestamp),
            ("timestamptz", parse_timestamptz),
        )
    ]
    return dumpers, loaders


def as_ordinal(value: Any) -> int | None:
    """A date or time as the integer it is carried as (days, or microseconds), so that plain
    and far values of one family compare as PostgreSQL compares them; None for other values."""
    if isinstance(value, FarValue):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int((value - _EPOCH) // timedelta(microseconds=1))
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + (
            value.microsecond
        )
    return None
