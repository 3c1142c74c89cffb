"""The ``deployment`` section of the federation file: how the federation's topics are laid out
and where its parts are reached. ``deploy/render.py`` renders the compose and Kubernetes
deployments from it and the rest of the file; ``govsync --federation FILE`` takes every address
from it (passwords come from the environment: libpq's password file, the hash keys file).
``govsync up`` keeps its own single-node layout and addresses."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _template(text: str, name: str) -> str:
    if "{" + name + "}" not in text:
        raise ValueError(f"must contain {{{name}}}, which stands for each {name}'s name")
    return text


def _metrics_url(text: str, name: str) -> str:
    _template(text, name)
    if urlsplit(text.replace("{" + name + "}", "x")).port is None:
        raise ValueError(f"must name the port: http://host-{{{name}}}:PORT/metrics")
    return text


class KafkaLayout(_Model):
    """Where Kafka is, and the partitions and replication of every topic the deployment
    creates. A key's partition depends on the partition count: it never changes on a live
    topic."""

    bootstrap: str = ""
    partitions: int = Field(default=3, ge=1)
    replicas: int = Field(default=3, ge=1)
    min_insync_replicas: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _isr_fits(self) -> KafkaLayout:
        if self.min_insync_replicas > self.replicas:
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) exceeds replicas "
                f"({self.replicas}): no write could ever be acknowledged"
            )
        return self


class Databases(_Model):
    """libpq connection strings without passwords: ``{source}`` and ``{agency}`` stand for
    each source's and each subscribing agency's name."""

    sources: str  # the connector's role on each source
    replicas: str  # the processor's role on each replica
    audit: str  # the processor's role on the audit store (the writer of its agency's chain)
    audit_reader: str | None = None  # the data protection officer's: govsync audit commands

    @field_validator("sources")
    @classmethod
    def _per_source(cls, text: str) -> str:
        return _template(text, "source")

    @field_validator("replicas", "audit")
    @classmethod
    def _per_agency(cls, text: str) -> str:
        return _template(text, "agency")


class Metrics(_Model):
    connector: str  # e.g. http://connector-{source}:9400/metrics
    processor: str  # e.g. http://processor-{agency}:6066/metrics

    @field_validator("connector")
    @classmethod
    def _per_source(cls, text: str) -> str:
        return _metrics_url(text, "source")

    @field_validator("processor")
    @classmethod
    def _per_agency(cls, text: str) -> str:
        return _metrics_url(text, "agency")


class Deployment(_Model):
    kafka: KafkaLayout = KafkaLayout()
    registry: str = ""  # the schema registry's URL
    postgres: Databases | None = None
    metrics: Metrics | None = None
