"""Cross-checks of a manifest: entries against each other and against the contracts.

Each check yields ``(path, reason)`` problems, paths as in the file (``subscriptions[3].
fields[2]``), so one run reports every problem, the first one first.

Key fields: a replica is keyed like its source, so a subscription must allow every key field of
its topic. A key field may be transformed only by ``hash``: a keyed hash is deterministic and
collision-resistant, so distinct keys stay distinct and a delete finds its row (the delete's
key is hashed the same way). ``mask`` and ``year`` would fold distinct keys into one row.

Hash keys: a hash key belongs to one agency. The same key on two agencies' subscriptions would
let them join their pseudonymised data, which per-agency keys exist to prevent.

What each subscription discloses beyond its allow-list (filters on fields not received in
clear, sensitive fields without their legal basis, masks that hide little, empty purposes) is
checked by :mod:`sync.policy.minimisation`, at load: a :class:`~sync.policy.Projection` built
in code checks only that it can project.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sync.contracts.attributes import subject_fields
from sync.contracts.loader import Contract
from sync.policy.filters import FilterError, check_filter
from sync.policy.minimisation import minimisation_problems
from sync.policy.models import Manifest, Subscription
from sync.policy.transforms import Hash

Problem = tuple[str, str]


def manifest_problems(manifest: Manifest, contracts: Mapping[str, Contract]) -> Iterator[Problem]:
    """Every problem of ``manifest`` with these contracts (by topic)."""
    yield from _agency_problems(manifest)
    yield from _source_problems(manifest, contracts)
    yield from _subscription_problems(manifest, contracts)
    yield from _shared_hash_keys(manifest)


def subscription_problems(subscription: Subscription, contract: Contract) -> Iterator[Problem]:
    """Problems of one subscription against its topic's contract, paths relative to it."""
    types = {f["name"]: f["type"] for f in contract.row_schema["fields"]}
    yield from _field_problems(subscription, contract, types)
    yield from _transform_problems(subscription, contract, types)
    if subscription.filter is not None:
        try:
            check_filter(subscription.filter, contract)
        except FilterError as exc:
            yield "row_filter", str(exc)
    if subscription.grounds.restrictable:
        yield from _restriction_problems(subscription, contract)


def person_fields(contract: Contract) -> tuple[str, ...]:
    """The fields of ``contract``'s rows that hold a personal id (``govsync.subject:
    personal_id``), in the contract's order."""
    marked = subject_fields(contract.row_schema)
    return tuple(name for name, kind in marked.items() if kind == "personal_id")


def _restriction_problems(subscription: Subscription, contract: Contract) -> Iterator[Problem]:
    """A person may object to processing on consent or legitimate interest, so the replica
    must let their rows be found: by a personal-id field it receives (hashed is enough)."""
    people = person_fields(contract)
    basis = subscription.grounds.basis
    if not people:
        yield (
            "legal_basis.basis",
            f"{basis!r} lets a data subject object or withdraw, but {contract.topic}'s rows name "
            "no personal id (govsync.subject: personal_id) to honour that by",
        )
    elif not set(people) & set(subscription.fields):
        yield (
            "fields",
            f"{basis!r} lets a data subject object or withdraw: receive {' or '.join(people)} "
            "(hashed is enough) so the person's rows can be found and removed",
        )


def _agency_problems(manifest: Manifest) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, agency in enumerate(manifest.agencies):
        if agency.code in seen:
            yield (
                f"agencies[{i}].code",
                f"duplicate agency {agency.code!r} (also agencies[{seen[agency.code]}])",
            )
        seen.setdefault(agency.code, i)


def _source_problems(manifest: Manifest, contracts: Mapping[str, Contract]) -> Iterator[Problem]:
    codes = {a.code for a in manifest.agencies}
    publisher: dict[str, str] = {}
    for i, source in enumerate(manifest.sources):
        where = f"sources[{i}]"
        if source.agency not in codes:
            yield f"{where}.agency", f"unknown agency {source.agency!r}"
        for j, topic in enumerate(source.topics):
            if topic not in contracts:
                yield f"{where}.tables[{j}]", f"unknown topic {topic!r}: no contract for it"
            elif topic in publisher:
                yield (
                    f"{where}.tables[{j}]",
                    f"{topic!r} is already published by {publisher[topic]}",
                )
            publisher.setdefault(topic, where)


def _subscription_problems(
    manifest: Manifest, contracts: Mapping[str, Contract]
) -> Iterator[Problem]:
    codes = {a.code for a in manifest.agencies}
    published = set(manifest.topics)
    seen: dict[tuple[str, str], int] = {}
    for i, subscription in enumerate(manifest.subscriptions):
        where = f"subscriptions[{i}]"
        pair = (subscription.agency, subscription.topic)
        if pair in seen:
            yield (
                where,
                (
                    f"duplicate subscription of {pair[0]!r} to {pair[1]!r} "
                    f"(also subscriptions[{seen[pair]}])"
                ),
            )
        seen.setdefault(pair, i)
        if subscription.agency not in codes:
            yield f"{where}.agency", f"unknown agency {subscription.agency!r}"
        contract = contracts.get(subscription.topic)
        if contract is None:
            yield f"{where}.topic", f"unknown topic {subscription.topic!r}: no contract for it"
            continue
        if subscription.topic not in published:
            yield f"{where}.topic", f"no source in the manifest publishes {subscription.topic!r}"
        for path, reason in subscription_problems(subscription, contract):
            yield f"{where}.{path}", reason
        for path, reason in minimisation_problems(subscription, contract):
            yield f"{where}.{path}", reason


def _field_problems(
    subscription: Subscription, contract: Contract, types: Mapping[str, Any]
) -> Iterator[Problem]:
    seen: set[str] = set()
    for j, name in enumerate(subscription.fields):
        if name not in types:
            yield f"fields[{j}]", f"unknown field {name!r}: not a field of {contract.topic}"
        elif name in seen:
            yield f"fields[{j}]", f"field {name!r} is listed twice"
        seen.add(name)
    for key in contract.key_fields:
        if key not in seen:
            yield (
                "fields",
                (
                    f"key field {key!r} of {contract.topic} must be allowed: the replica is keyed "
                    "by it (hash it to receive a pseudonym instead)"
                ),
            )


def _transform_problems(
    subscription: Subscription, contract: Contract, types: Mapping[str, Any]
) -> Iterator[Problem]:
    allowed = set(subscription.fields)
    for name, transform in subscription.transforms.items():
        where = f"transforms.{name}"
        if name not in types:
            yield where, f"unknown field {name!r}: not a field of {contract.topic}"
        elif name not in allowed:
            yield where, f"transform on field {name!r}, which is not in the allowed fields"
        elif (problem := transform.problem(types[name])) is not None:
            yield where, problem
        elif name in contract.key_fields and not isinstance(transform, Hash):
            yield (
                where,
                (
                    f"{name!r} is a key field: only hash keeps distinct keys distinct, "
                    f"{transform.kind} would merge rows"
                ),
            )


def _shared_hash_keys(manifest: Manifest) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    for i, subscription in enumerate(manifest.subscriptions):
        for name, transform in subscription.transforms.items():
            if not isinstance(transform, Hash):
                continue
            first = owner.setdefault(transform.key, subscription.agency)
            if first != subscription.agency:
                yield (
                    f"subscriptions[{i}].transforms.{name}.key",
                    (
                        f"hash key {transform.key!r} is already used by agency {first!r}: each "
                        "agency needs its own keys, or their pseudonyms could be linked"
                    ),
                )
