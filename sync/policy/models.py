"""The federation manifest as typed, frozen models: agencies, the sources they publish, and
the subscriptions that say who receives which part of which topic, why, and on what legal
basis. These models check one entry at a time; :mod:`sync.policy.checks` checks entries
against each other and against the contracts, and :mod:`sync.policy.minimisation` checks what
a subscription discloses (``filter_only`` and ``sensitive_fields`` are explained there)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from sync.errors import ConfigError
from sync.policy.deployment import Deployment
from sync.policy.filters import Expr, FilterError, parse_filter
from sync.policy.identifiers import check_identifier
from sync.policy.transforms import Hash, Transform


class ManifestError(ConfigError):
    """The manifest is wrong: ``file``, the ``path`` inside it (``subscriptions[3].fields[2]``)
    and the ``reason``. ``problems`` holds every (path, reason) found, the first one first."""

    def __init__(
        self,
        file: str,
        path: str,
        reason: str,
        problems: tuple[tuple[str, str], ...] = (),
    ) -> None:
        problems = problems or ((path, reason),)
        super().__init__(
            f"{file}: {path}: {reason}", file=file, path=path, reason=reason, problems=problems
        )
        self.file = file
        self.path = path
        self.reason = reason
        self.problems = problems


Identifier = Annotated[StrictStr, AfterValidator(check_identifier)]
Text = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]
ProvinceCode = Annotated[StrictStr, StringConstraints(pattern=r"^[0-9]{2}$")]


def _check_topic(topic: str) -> str:
    domain, dot, entity = topic.partition(".")
    if not dot:
        raise ValueError(f"a topic is <source>.<entity>, not {topic!r}")
    check_identifier(domain)
    check_identifier(entity)
    return topic


Topic = Annotated[StrictStr, AfterValidator(_check_topic)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Agency(_Model):
    """A government agency taking part: a source, a subscriber or both."""

    code: Identifier
    name: Text
    level: Literal["central", "provincial"]
    province_code: ProvinceCode | None = None

    @model_validator(mode="after")
    def _province_matches_level(self) -> Agency:
        if self.level == "provincial" and self.province_code is None:
            raise ValueError("a provincial agency needs its province_code")
        if self.level == "central" and self.province_code is not None:
            raise ValueError("a central agency has no province_code")
        return self


class Source(_Model):
    """A source database of an agency, and the tables it publishes. ``name`` is the source's
    name on the connector and the first part of its topics (``population.citizen``)."""

    name: Identifier
    agency: Identifier
    database: Identifier
    tables: tuple[Identifier, ...] = Field(min_length=1)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(f"{self.name}.{table}" for table in self.tables)


# The grounds Law 91/2025/QH15 on personal data protection allows processing on, as the
# manifest names them. A data subject may withdraw consent or object to processing on the
# last: subscriptions on those two act on the restrictions register (``govsync restrict``).
LEGAL_BASES: dict[str, str] = {
    "consent": "the data subject's consent",
    "contract": "a contract the data subject is party to",
    "legal_obligation": "an obligation a law places on the controller",
    "vital_interest": "protecting the life or health of the data subject or another person",
    "public_duty": "a state agency's duties as the law prescribes them",
    "public_emergency": "national defence, security, public order, disaster or epidemic",
    "legitimate_interest": "a legitimate interest the data subject may object to",
}
RESTRICTABLE_BASES = frozenset({"consent", "legitimate_interest"})


class LegalBasis(_Model):
    """Why processing is lawful: one of :data:`LEGAL_BASES` and the law, article or document it
    rests on (``reference``)."""

    basis: Literal[
        "consent",
        "contract",
        "legal_obligation",
        "vital_interest",
        "public_duty",
        "public_emergency",
        "legitimate_interest",
    ]
    reference: Text

    @property
    def restrictable(self) -> bool:
        """Whether a data subject's withdrawal of consent or objection stops the processing."""
        return self.basis in RESTRICTABLE_BASES

    def __str__(self) -> str:
        return f"{self.basis}: {self.reference}"


class Subscription(_Model):
    """What one agency receives of one topic: the allowed fields, the rows (a row filter), the
    transforms applied to allowed fields, and why (purpose and legal basis, both required).
    ``legal_basis`` is the basis as text (``public_duty: Law on ...``), what the audit records;
    ``grounds`` the structured :class:`LegalBasis` (written ``legal_basis:`` in the file).

    ``filter_only`` names each field the row filter reads without the agency receiving it in
    clear, with the reason; ``sensitive_fields`` names each sensitive personal field received
    or filtered on, with the legal basis for processing it (field -> text, both)."""

    agency: Identifier
    topic: Topic
    purpose: Text
    grounds: LegalBasis = Field(alias="legal_basis")
    fields: tuple[Identifier, ...] = Field(min_length=1)
    row_filter: StrictStr | None = None
    transforms: Mapping[Identifier, Transform] = Field(default_factory=dict)
    filter_only: Mapping[Identifier, Text] = Field(default_factory=dict)
    sensitive_fields: Mapping[Identifier, Text] = Field(default_factory=dict)

    @field_validator("row_filter")
    @classmethod
    def _filter_parses(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                parse_filter(text)
            except FilterError as exc:
                raise ValueError(str(exc)) from None
        return text

    @field_validator("grounds", mode="before")
    @classmethod
    def _structured_basis(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "a legal basis is structured: {basis: <one of "
                + ", ".join(LEGAL_BASES)
                + ">, reference: <the law, article or document it rests on>}"
            )
        return value

    @cached_property
    def legal_basis(self) -> str:
        return str(self.grounds)

    @cached_property
    def filter(self) -> Expr | None:
        """The row filter's syntax tree, unchecked; :class:`~sync.policy.Projection` binds
        it to the contract."""
        return None if self.row_filter is None else parse_filter(self.row_filter)

    @property
    def hash_keys(self) -> frozenset[str]:
        return frozenset(t.key for t in self.transforms.values() if isinstance(t, Hash))


class Manifest(_Model):
    """The whole federation: who takes part, who publishes what, who receives what."""

    version: Literal[1]
    agencies: tuple[Agency, ...] = Field(min_length=1)
    sources: tuple[Source, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    deployment: Deployment = Deployment()

    def agency(self, code: str) -> Agency:
        for agency in self.agencies:
            if agency.code == code:
                return agency
        raise KeyError(code)

    def subscriptions_of(self, agency: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if s.agency == agency)

    def subscription(self, agency: str, topic: str) -> Subscription:
        for subscription in self.subscriptions:
            if (subscription.agency, subscription.topic) == (agency, topic):
                return subscription
        raise KeyError((agency, topic))

    @property
    def topics(self) -> tuple[str, ...]:
        """Every published topic, in manifest order."""
        return tuple(topic for source in self.sources for topic in source.topics)

    def hash_keys(self, agency: str) -> frozenset[str]:
        """The hash keys whose secrets ``agency``'s processor needs."""
        keys: frozenset[str] = frozenset()
        return keys.union(*(s.hash_keys for s in self.subscriptions_of(agency)))
