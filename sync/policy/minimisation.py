"""What a subscription discloses beyond its allow-list: the checks that close inference leaks.

The rows an agency receives tell it which side of its row filter each person is on, so a
filter discloses the fields it reads as surely as the allow-list does. The rules:

- A row filter reads only fields the agency receives in clear: in ``fields`` and not
  transformed. Filtering on the raw ``personal_id`` of a hashed one, the full ``date_of_birth``
  of a year, or a field not allowed at all needs an entry under ``filter_only``, naming the
  field and the reason a reviewer reads (the error for a filter without one says so)::

      filter_only:
        date_of_birth: The survey covers adults only; the office receives the year of birth.

  An entry the filter does not need (a field it does not read, or one received in clear) is
  refused, so the list stays what the filter really discloses.
- A field its contract classifies ``sensitive_personal`` that the agency receives (even masked
  or hashed) or filters on needs its own legal basis, named under ``sensitive_fields`` beside
  the subscription's ``legal_basis``::

      sensitive_fields:
        ethnicity: Law on ..., Article ...: processing of ethnic origin for ...

  An entry for a field neither received nor filtered on is refused; one for a field the
  contract does not (or no longer) call sensitive is allowed, so a contract that lowers a
  classification does not stop the processors.
- A ``mask`` keeps at most :data:`MAX_MASK_KEEP` characters in clear. Contracts give no
  maximum length for text, so a larger ``keep`` could leave a value all but unmasked.
- The purpose, each ``filter_only`` reason and each sensitive field's basis are sentences:
  at least :data:`MIN_WORDS` words and :data:`MIN_CHARACTERS` characters (``purpose: x`` says
  nothing a reviewer or a data subject can check).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

from sync.contracts.loader import Contract
from sync.policy.filters.check import field_references
from sync.policy.models import Subscription
from sync.policy.transforms import Mask

Problem = tuple[str, str]

SENSITIVE = "sensitive_personal"
MAX_MASK_KEEP = 8
MIN_WORDS = 3
MIN_CHARACTERS = 20

_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more: numbers and initials do not count
_RECEIVED_AS = {"hash": "only as a keyed hash", "year": "only as its year", "mask": "only masked"}


def minimisation_problems(subscription: Subscription, contract: Contract) -> Iterator[Problem]:
    """Every disclosure problem of ``subscription``, paths relative to it (``row_filter``,
    ``filter_only.date_of_birth``)."""
    fields = {f["name"]: f for f in contract.row_schema["fields"]}
    yield from _sentence_problem("purpose", subscription.purpose, "the purpose")
    yield from _filter_problems(subscription, fields)
    yield from _filter_only_problems(subscription, fields, contract.topic)
    yield from _sensitive_problems(subscription, fields)
    yield from _sensitive_entry_problems(subscription, fields, contract.topic)
    yield from _mask_problems(subscription, fields)


def filtered_fields(subscription: Subscription) -> frozenset[str]:
    """The fields the subscription's row filter reads."""
    if subscription.filter is None:
        return frozenset()
    return frozenset(f.name for f in field_references(subscription.filter))


def _in_clear(subscription: Subscription, name: str) -> bool:
    return name in subscription.fields and name not in subscription.transforms


def _filter_problems(
    subscription: Subscription, fields: Mapping[str, Mapping[str, Any]]
) -> Iterator[Problem]:
    if subscription.filter is None:
        return
    for field in field_references(subscription.filter):
        name = field.name
        if name not in fields or _in_clear(subscription, name):
            continue  # an unknown field is the filter check's to report
        if name in subscription.filter_only:
            continue
        transform = subscription.transforms.get(name)
        if transform is None:
            how = "does not receive"
        else:
            how = f"receives {_RECEIVED_AS.get(transform.kind, 'transformed')}"
        yield (
            "row_filter",
            f"column {field.column}: the filter reads {name!r}, which {subscription.agency} "
            f"{how}: the rows it receives would disclose it. Filter on a field it receives "
            f"in clear, or list {name!r} under filter_only with the reason",
        )


def _filter_only_problems(
    subscription: Subscription, fields: Mapping[str, Mapping[str, Any]], topic: str
) -> Iterator[Problem]:
    read = filtered_fields(subscription)
    for name, reason in subscription.filter_only.items():
        where = f"filter_only.{name}"
        if name not in fields:
            yield where, f"unknown field {name!r}: not a field of {topic}"
        elif name not in read:
            yield where, f"the row filter does not read {name!r}: remove the entry"
        elif _in_clear(subscription, name):
            yield where, f"{name!r} is received in clear: filtering on it needs no entry"
        else:
            yield from _sentence_problem(where, reason, f"the reason for filtering on {name!r}")


def _sensitive_problems(
    subscription: Subscription, fields: Mapping[str, Mapping[str, Any]]
) -> Iterator[Problem]:
    disclosed = [(f"fields[{j}]", name) for j, name in enumerate(subscription.fields)]
    disclosed += [(f"filter_only.{name}", name) for name in subscription.filter_only]
    for where, name in disclosed:
        field = fields.get(name)
        if field is None or field.get("classification") != SENSITIVE:
            continue
        if name not in subscription.sensitive_fields:
            yield (
                where,
                f"{name!r} is sensitive personal data ({SENSITIVE} in its contract): name it "
                "under sensitive_fields with the legal basis for processing it",
            )


def _sensitive_entry_problems(
    subscription: Subscription, fields: Mapping[str, Mapping[str, Any]], topic: str
) -> Iterator[Problem]:
    disclosed = set(subscription.fields) | set(subscription.filter_only)
    for name, basis in subscription.sensitive_fields.items():
        where = f"sensitive_fields.{name}"
        if name not in fields:
            yield where, f"unknown field {name!r}: not a field of {topic}"
        elif name not in disclosed:
            yield where, f"{name!r} is neither received nor filtered on: remove the entry"
        else:
            yield from _sentence_problem(where, basis, f"the legal basis for {name!r}")


def _mask_problems(
    subscription: Subscription, fields: Mapping[str, Mapping[str, Any]]
) -> Iterator[Problem]:
    for name, transform in subscription.transforms.items():
        if not isinstance(transform, Mask) or name not in fields:
            continue
        if transform.keep > MAX_MASK_KEEP:
            yield (
                f"transforms.{name}.keep",
                f"a mask keeps at most {MAX_MASK_KEEP} characters in clear, not "
                f"{transform.keep}: the contract gives no maximum length for {name!r}, so "
                "this mask could leave a value all but unmasked",
            )


def _sentence_problem(where: str, text: str, what: str) -> Iterator[Problem]:
    words = len(_WORD.findall(text))
    characters = len(" ".join(text.split()))
    if words < MIN_WORDS or characters < MIN_CHARACTERS:
        yield (
            where,
            f"{what} must say something a reviewer can check: at least {MIN_WORDS} words and "
            f"{MIN_CHARACTERS} characters, not {textwrap.shorten(text, 40, placeholder='…')!r}",
        )
