"""The Kafka ACLs rendered from the demo manifest: each processor reads exactly its agency's
subscriptions and writes only its own dead letters; each connector writes only its source's
topics; no principal holds a cluster permission."""

from __future__ import annotations

import pytest

from sync.contracts import load_contracts
from sync.errors import ConfigError
from sync.policy import FEDERATION_FILE, load_manifest
from sync.stack.kafka.acls import (
    Grant,
    Operation,
    PrincipalAcls,
    ResourceKind,
    federation_acls,
)

TOPIC, GROUP = ResourceKind.TOPIC, ResourceKind.GROUP
READ, WRITE, CREATE, DESCRIBE = (
    Operation.READ,
    Operation.WRITE,
    Operation.CREATE,
    Operation.DESCRIBE,
)


@pytest.fixture(scope="module")
def principals() -> dict[str, PrincipalAcls]:
    contracts = load_contracts()
    rendered = federation_acls(load_manifest(FEDERATION_FILE, contracts), contracts)
    return {p.user: p for p in rendered}


def topics_read(acls: PrincipalAcls) -> set[str]:
    return {g.name for g in acls.grants if g.resource is TOPIC and g.operation is READ}


def topics_written(acls: PrincipalAcls) -> set[str]:
    return {g.name for g in acls.grants if g.resource is TOPIC and g.operation is WRITE}


def test_one_principal_per_source_connector_and_subscribing_agency(
    principals: dict[str, PrincipalAcls],
) -> None:
    assert set(principals) == {
        "connector-population",
        "connector-land",
        "connector-business",
        "connector-finance",
        "connector-insurance",
        "processor-gdt",
        "processor-vss",
        "processor-gso",
        "processor-hanoi",
        "processor-hcmc",
    }
    assert principals["processor-gso"].principal == "User:processor-gso"


def test_the_statistics_office_reads_its_two_subscriptions_and_nothing_else(
    principals: dict[str, PrincipalAcls],
) -> None:
    gso = principals["processor-gso"]
    assert topics_read(gso) == {"population.citizen", "insurance.insured_person"}
    assert gso.allows(TOPIC, "population.citizen", DESCRIBE)
    assert not gso.allows(TOPIC, "land.land_parcel", READ)
    assert not gso.allows(TOPIC, "population.household", READ)
    assert not gso.allows(TOPIC, "govsync.dlq.hanoi", READ)


def test_a_processor_commits_in_its_own_group_only(principals: dict[str, PrincipalAcls]) -> None:
    gso = principals["processor-gso"]
    groups = {(g.name, g.operation) for g in gso.grants if g.resource is GROUP}
    assert groups == {("govsync-replica-gso", READ)}


def test_a_processor_writes_its_own_dead_letters_and_the_audit_checkpoints_only(
    principals: dict[str, PrincipalAcls],
) -> None:
    hanoi = principals["processor-hanoi"]
    assert topics_written(hanoi) == {"govsync.dlq.hanoi", "govsync.audit.checkpoints"}
    for operation in (WRITE, DESCRIBE, CREATE):
        assert hanoi.allows(TOPIC, "govsync.dlq.hanoi", operation)
    assert not hanoi.allows(TOPIC, "govsync.dlq.hcmc", WRITE)
    assert not hanoi.allows(TOPIC, "population.citizen", WRITE)  # reads its sources only


def test_a_connector_writes_its_source_topics_and_its_dead_letters_and_reads_nothing(
    principals: dict[str, PrincipalAcls],
) -> None:
    population = principals["connector-population"]
    assert topics_written(population) == {
        "population.citizen",
        "population.household",
        "govsync.dlq.connector.population",
    }
    assert population.allows(TOPIC, "govsync.dlq.connector.population", CREATE)
    assert not population.allows(TOPIC, "land.land_parcel", WRITE)
    assert not any(g.operation is READ for g in population.grants)
    assert not any(g.resource is GROUP for g in population.grants)


def test_every_grant_is_on_a_named_topic_or_group_never_the_cluster(
    principals: dict[str, PrincipalAcls],
) -> None:
    for acls in principals.values():
        assert {g.resource for g in acls.grants} <= {TOPIC, GROUP}
        assert all(g.name and "*" not in g.name for g in acls.grants)


def test_the_topic_prefix_applies_to_topics_groups_and_dead_letters() -> None:
    contracts = load_contracts()
    manifest = load_manifest(FEDERATION_FILE, contracts)
    rendered = {p.user: p for p in federation_acls(manifest, contracts, topic_prefix="test.")}
    gso = rendered["processor-gso"]
    assert topics_read(gso) == {"test.population.citizen", "test.insurance.insured_person"}
    assert Grant(GROUP, "test.govsync-replica-gso", READ) in gso.grants
    assert topics_written(gso) == {"test.govsync.dlq.gso", "test.govsync.audit.checkpoints"}
    assert "test.govsync.dlq.connector.land" in topics_written(rendered["connector-land"])


def test_without_audit_checkpoints_a_processor_writes_its_dead_letters_only() -> None:
    contracts = load_contracts()
    manifest = load_manifest(FEDERATION_FILE, contracts)
    rendered = {p.user: p for p in federation_acls(manifest, contracts, checkpoint_topic=None)}
    assert topics_written(rendered["processor-vss"]) == {"govsync.dlq.vss"}


def test_a_topic_without_a_contract_is_refused() -> None:
    contracts = load_contracts()
    manifest = load_manifest(FEDERATION_FILE, contracts)
    missing = {t: c for t, c in contracts.items() if t != "land.land_parcel"}
    with pytest.raises(ConfigError, match=r"land\.land_parcel"):
        federation_acls(manifest, missing)
