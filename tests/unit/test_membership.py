"""One active member per agency: the lock key each group takes, and how ``govsync status``
reports members and flags an agency that no worker serves."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from psycopg.conninfo import conninfo_to_dict

from sync.metrics import ProcessorMetrics
from sync.processor.membership import MemberLock, MembershipLost, member_lock_key
from sync.processor.replica_session import ReplicaSession
from sync.stack.status import ProcessHealth, flag_agencies_without_active_member, summarize_roles


def test_each_group_has_its_own_stable_non_negative_lock_key() -> None:
    keys = {member_lock_key(f"x.govsync-replica-{agency}") for agency in ("vss", "gdt", "gso")}
    assert len(keys) == 3
    assert all(0 <= key < 2**63 for key in keys)
    # the key is part of the contract between workers of different versions
    assert member_lock_key("govsync-replica-vss") == member_lock_key("govsync-replica-vss")
    assert member_lock_key("govsync-replica-vss") == 0x7F26CAC28BF60B89


def test_the_lock_connection_keeps_alive_unless_the_dsn_says_otherwise() -> None:
    lock = MemberLock("govsync-replica-vss")
    given = conninfo_to_dict(lock.conninfo("host=db dbname=replica keepalives_idle=60"))
    assert given["keepalives_idle"] == "60", "the operator's own setting stays"
    assert given["keepalives"] == "1" and given["keepalives_count"] == "3"
    assert given["dbname"] == "replica"


def test_roles_read_as_one_word_or_as_counts() -> None:
    assert summarize_roles({"vss": "active"}) == "active"
    assert summarize_roles({"vss": "standby", "gdt": "standby"}) == "standby"
    assert (
        summarize_roles({"vss": "active", "gdt": "standby", "gso": "active"})
        == "active 2, standby 1"
    )
    assert summarize_roles({}) == "-"


def processor(name: str, members: dict[str, str], alive: bool = True) -> ProcessHealth:
    return ProcessHealth(name, "processor", 1, alive, scraped=alive, members=members)


def test_an_agency_whose_every_worker_stands_by_is_a_problem() -> None:
    report = [
        processor("a", {"vss": "active", "gdt": "standby"}),
        processor("b", {"vss": "standby", "gdt": "standby"}),
    ]
    flag_agencies_without_active_member(report)
    assert [h.problems for h in report] == [
        ["no active member for gdt"],
        ["no active member for gdt"],
    ]
    assert not report[0].healthy


def test_a_standby_beside_an_active_member_is_healthy() -> None:
    report = [processor("a", {"vss": "active"}), processor("b", {"vss": "standby"})]
    flag_agencies_without_active_member(report)
    assert all(h.healthy for h in report)


def test_a_stopped_subscription_is_not_also_reported_as_unserved() -> None:
    report = [processor("a", {"vss": "stopped"}), processor("b", {"vss": "stopped"})]
    flag_agencies_without_active_member(report)
    assert all(h.problems == [] for h in report)


def test_a_lost_lock_is_never_taken_for_a_bad_event() -> None:
    session = ReplicaSession(
        "vss",
        "dbname=replica",
        {},
        "govsync-replica-vss",
        {},
        ProcessorMetrics.create(CollectorRegistry()),
        MemberLock("govsync-replica-vss"),
    )
    lost = MembershipLost("lost")
    with pytest.raises(MembershipLost):
        asyncio.run(session.raise_unless_event_error(lost))
    with pytest.raises(MembershipLost, match="is gone"):
        asyncio.run(session.applier())  # no connection without the lock
