"""Which agencies a worker hosts, and with which settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.config import ProcessorSettings
from sync.errors import ConfigError
from sync.policy import FEDERATION_FILE
from sync.policy.national import national_agencies, national_manifest_yaml
from sync.processor.worker import agencies_of, deleted_keys_of, subscriptions_of


def settings(
    agency: str, dsn: str = "dbname=replica_{agency}", **more: object
) -> ProcessorSettings:
    return ProcessorSettings(  # type: ignore[arg-type]
        agency=agency,
        replica_dsn=dsn,
        bootstrap="localhost:9092",
        registry_url="http://localhost:8081",
        **more,
    )


def test_one_agency() -> None:
    assert agencies_of(settings("vss", "dbname=replica")) == ["vss"]


def test_a_list_of_agencies_each_with_its_own_replica_and_group() -> None:
    worker = settings(" gdt, vss ,gso", topic_prefix="x.")
    assert agencies_of(worker) == ["gdt", "vss", "gso"]
    vss = worker.for_agency("vss")
    assert vss.replica_dsn == "dbname=replica_vss"
    assert vss.group_id == "x.govsync-replica-vss"
    assert worker.for_agency("gdt").group_id != vss.group_id


def test_every_subscriber_of_the_manifest() -> None:
    assert agencies_of(settings("*", manifest=FEDERATION_FILE)) == [
        "gdt",
        "gso",
        "hanoi",
        "hcmc",
        "vss",
    ], "the sources' own agencies subscribe to nothing and are not hosted"


def test_the_national_manifest_has_85_subscribers(tmp_path: Path) -> None:
    manifest = tmp_path / "national.yaml"
    manifest.write_text(national_manifest_yaml())
    hosted = agencies_of(settings("*", manifest=manifest))
    assert sorted(hosted) == sorted(national_agencies()) and len(hosted) == 85
    contracts, projections = subscriptions_of(settings("*", manifest=manifest).for_agency("p79"))
    assert list(contracts) == ["population.citizen"]
    assert projections["population.citizen"].subscription.row_filter == "province_code == '79'"


@pytest.mark.parametrize(
    ("agency", "dsn", "message"),
    [
        ("gdt,vss", "dbname=shared", "must contain {agency}"),
        ("gdt,gdt", "dbname=r_{agency}", "names an agency twice"),
        (" , ", "dbname=r", "names no agency"),
        ("*", "dbname=r_{agency}", "needs a manifest"),
    ],
)
def test_a_worker_refuses_what_cannot_work(agency: str, dsn: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        agencies_of(settings(agency, dsn))


def test_remembered_deletes_are_hashed_under_the_agencys_own_key(tmp_path: Path) -> None:
    keys = tmp_path / "hash_keys.json"
    keys.write_text(json.dumps({"remembered-deletes.vss": "v" * 64, "gso_pseudonym": "g" * 64}))
    audited = {"manifest": FEDERATION_FILE, "audit_dsn": "dbname=audit"}
    vss = settings("vss", hash_keys_file=keys, **audited)
    assert deleted_keys_of(vss).secret == b"v" * 64
    with pytest.raises(ConfigError, match=r"'remembered-deletes\.gso' in GOVSYNC_HASH_KEYS_FILE"):
        deleted_keys_of(settings("gso", hash_keys_file=keys, **audited))
    with pytest.raises(ConfigError, match=r"GOVSYNC_HASH_KEYS_FILE \(unset\)"):
        deleted_keys_of(settings("gso", **audited))


def test_a_development_worker_makes_its_key_once_in_its_state_directory(tmp_path: Path) -> None:
    worker = settings("vss", unrestricted=True, data_dir=tmp_path)
    first = deleted_keys_of(worker)
    assert (tmp_path / "remembered-deletes.vss.key").stat().st_mode & 0o777 == 0o600
    assert deleted_keys_of(worker) == first, "the same key after a restart"
