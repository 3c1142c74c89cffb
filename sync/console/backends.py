"""What the console reads, blocking (the app runs these in threads): the registry through its
REST API with confluent-kafka's client, and the audit through its reader role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka.schema_registry import SchemaRegistryClient, SchemaRegistryError
from psycopg import conninfo

from sync.audit.chain import Entry
from sync.audit.reader import disclosures_about, snapshot, store_exists
from sync.console.schema_pages import SubjectSummary
from sync.contracts.review import RegisteredVersion, configured_level, history

AUDIT_CONNECT_TIMEOUT = 5


class RegistryUnavailable(Exception):
    """The registry refused or did not answer; the message says what happened."""


@dataclass
class RegistryView:
    client: SchemaRegistryClient

    def subjects(self) -> list[SubjectSummary]:
        with _asking():
            return [
                SubjectSummary(name, tuple(sorted(self.client.get_versions(name))))
                for name in sorted(self.client.get_subjects())
            ]

    def history(self, subject: str) -> list[RegisteredVersion]:
        """Every live version, newest first; empty for an unknown subject."""
        with _asking():
            return history(self.client, subject)

    def level(self, subject: str) -> str:
        with _asking():
            return configured_level(self.client, subject).value


@contextmanager
def _asking() -> Iterator[None]:
    """Any failure of the registry client as :class:`RegistryUnavailable`: the client raises
    its own errors for answers and its HTTP library's for transport."""
    try:
        yield
    except SchemaRegistryError as exc:
        raise RegistryUnavailable(
            f"the registry answered {exc.http_status_code}: {exc.error_message}"
        ) from exc
    except Exception as exc:
        raise RegistryUnavailable(f"the registry did not answer: {exc}") from exc


class AuditMissing(Exception):
    """The audit database holds no audit store."""


def disclosures(dsn: str, personal_id: str) -> list[Entry]:
    """Every entry about ``personal_id``, oldest first, read in one snapshot."""
    with snapshot(conninfo.make_conninfo(dsn, connect_timeout=AUDIT_CONNECT_TIMEOUT)) as conn:
        if not store_exists(conn):
            raise AuditMissing
        return disclosures_about(conn, [personal_id])
