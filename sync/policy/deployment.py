"""The ``deployment`` section of the federation file: how the federation's Kafka topics are
laid out wherever it is deployed. ``deploy/render.py`` renders the topics, the ACLs and the
workloads of compose and Kubernetes from it and the rest of the file; ``govsync up`` keeps its
own single-node layout."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaLayout(_Model):
    """Partitions and replication of every topic the deployment creates. A key's partition
    depends on the partition count, so it never changes on a live topic."""

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


class Deployment(_Model):
    kafka: KafkaLayout = KafkaLayout()
