"""The keyed hash remembered deletes are kept by: one form per key, a secret that is checked
and never shown."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sync.errors import ConfigError
from sync.replica import DeletedKeys, deletes_key_name
from sync.replica.deletes import canonical_key
from sync.temporal import FarDate

SECRET = b"s" * 32


def test_the_digest_is_hmac_sha256_of_the_table_and_the_key() -> None:
    keys = DeletedKeys(SECRET)
    expected = hmac.new(SECRET, b"t18:population.citizens12:001090000001", hashlib.sha256)
    assert keys.digest("population.citizen", ["001090000001"]) == expected.digest()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("t.a", ["ab", "c"]), ("t.a", ["a", "bc"])),  # parts cannot run into each other
        (("t.a", ["1"]), ("t.a", [1])),  # text and number
        (("t.a", ["2025-01-01"]), ("t.a", [date(2025, 1, 1)])),  # text and date
        (("t.a", [None]), ("t.a", [""])),
        (("t.a", ["x"]), ("t.b", ["x"])),  # the same key in two tables
    ],
)
def test_distinct_keys_have_distinct_forms(
    one: tuple[str, list[object]], other: tuple[str, list[object]]
) -> None:
    assert canonical_key(*one) != canonical_key(*other)


def test_one_instant_in_any_time_zone_has_one_form() -> None:
    utc = datetime(2025, 7, 1, 3, 0, tzinfo=UTC)
    hanoi = utc.astimezone(timezone(timedelta(hours=7)))
    assert canonical_key("t.a", [utc]) == canonical_key("t.a", [hanoi])
    assert canonical_key("t.a", [Decimal("1.50")]) == canonical_key("t.a", [Decimal("1.5")])
    assert canonical_key("t.a", [FarDate(2**31 - 1)]) != canonical_key("t.a", [2**31 - 1])


def test_a_key_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError, match="type object"):
        canonical_key("t.a", [object()])


def test_the_secret_is_the_agencys_named_key_and_is_checked() -> None:
    name = deletes_key_name("hanoi")
    assert name == "remembered-deletes.hanoi"
    assert DeletedKeys.from_secrets("hanoi", {name: SECRET}).secret == SECRET
    with pytest.raises(ConfigError, match=r"no secret for hash key 'remembered-deletes\.hanoi'"):
        DeletedKeys.from_secrets("hanoi", {deletes_key_name("hcmc"): SECRET})
    with pytest.raises(ConfigError, match="has 8 bytes; HMAC-SHA256 needs at least 32"):
        DeletedKeys.from_secrets("hanoi", {name: b"x" * 8})


def test_the_secret_is_never_shown() -> None:
    assert "sss" not in repr(DeletedKeys(SECRET))
