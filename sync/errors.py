"""The govsync error tree.

::

    GovsyncError                      root of every error we raise on purpose
    ├── Retryable                     marker: transient, retry with backoff, never dead-letter
    ├── Fatal                         marker: permanent, dead-letter the event or stop the component
    ├── ConfigError (Fatal)           a setting or the stack description is wrong
    ├── ContractError (Fatal)         an Avro contract is invalid or an event does not fit it
    ├── DecodeError (Fatal)           bytes on a topic or from pgoutput that cannot be decoded
    ├── SourceNotReady (Fatal)        a source database does not meet a precondition
    ├── RegistryError                 an error answered by a schema registry (Confluent codes)
    ├── RegistryUnavailable (Retryable) the registry cannot be reached or timed out
    ├── ReplicaUnavailable (Retryable) a replica database cannot be reached
    ├── SubscriptionStopped (Fatal)   a subscription cannot go on until someone fixes its replica
    ├── ReplicaSchemaError (Fatal)    a replica table no longer fits its contract, beyond adding
    ├── AuditError (Fatal)            the disclosure audit store cannot take or prove entries
    └── StackError (Fatal)            the embedded federation could not start or stop a process

Whether to retry or to dead-letter is decided in one place, :func:`is_retryable`, from these
markers; callers never inspect messages.
"""

from __future__ import annotations

from typing import Any


class GovsyncError(Exception):
    """Root of the tree. Structured fields go in keyword arguments so errors stay picklable."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fields))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[GovsyncError], message: str, fields: dict[str, Any]) -> GovsyncError:
    err = cls.__new__(cls)
    GovsyncError.__init__(err, message, **fields)
    for name, value in fields.items():
        setattr(err, name, value)
    return err


class Retryable(GovsyncError):
    """Transient: the same action may succeed later. Retried with backoff, never dead-lettered."""


class Fatal(GovsyncError):
    """Permanent: retrying cannot help. The event is dead-lettered or the component stops."""


class ConfigError(Fatal):
    """A setting, a file or the stack description is wrong; the message says which."""


class ContractError(Fatal):
    """An Avro contract is invalid, or a value does not fit its contract."""

    def __init__(self, message: str, *, contract: str = "", field: str = "") -> None:
        super().__init__(message, contract=contract, field=field)
        self.contract = contract
        self.field = field


class DecodeError(Fatal):
    """Bytes that cannot be decoded: wrong magic byte, unknown schema id, truncated body."""


class SourceNotReady(Fatal):
    """A source database does not meet a capture precondition (wal_level, privileges, keys).
    ``check`` names the precondition in a word, for metrics: ``wal_level``, ``replication``,
    ``table_missing``, ``select_privilege``, ``key``, ``publication``."""

    def __init__(self, message: str, *, source: str = "", check: str = "") -> None:
        super().__init__(message, source=source, check=check)
        self.source = source
        self.check = check


class RegistryError(GovsyncError):
    """An error in the Confluent Schema Registry API, with its HTTP status and error code."""

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message, http_status=http_status, error_code=error_code)
        self.http_status = http_status
        self.error_code = error_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.http_status, self.error_code, self.message))


class RegistryUnavailable(Retryable):
    """The schema registry cannot be reached or timed out."""


class ReplicaUnavailable(Retryable):
    """A subscriber's replica database cannot be reached."""


class SubscriptionStopped(Fatal):
    """The replica refuses every batch for a reason no event carries (a column dropped by hand,
    a missing privilege): the subscription stops, consuming nothing more, until fixed."""

    def __init__(self, message: str, *, agency: str = "") -> None:
        super().__init__(message, agency=agency)
        self.agency = agency


class ReplicaSchemaError(Fatal):
    """A replica table differs from its projected contract in a way govsync does not change on
    its own (a column's type, a required column the contract dropped, a missing key column).
    ``found`` and ``expected`` are SQL types; empty where there is no column."""

    def __init__(
        self,
        message: str,
        *,
        table: str = "",
        column: str = "",
        found: str = "",
        expected: str = "",
    ) -> None:
        super().__init__(message, table=table, column=column, found=found, expected=expected)
        self.table = table
        self.column = column
        self.found = found
        self.expected = expected


class AuditError(Fatal):
    """The disclosure audit store is not in a state to append to (e.g. a chain head removed)."""

    def __init__(self, message: str, *, agency: str = "") -> None:
        super().__init__(message, agency=agency)
        self.agency = agency


class StackError(Fatal):
    """The embedded federation could not start, supervise or stop one of its processes."""


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is transient: the one place that decides retry versus dead-letter."""
    if isinstance(exc, Retryable):
        return True
    if isinstance(exc, GovsyncError):
        return False
    # Connection-level failures of the libraries we use are transient by nature.
    import psycopg

    return isinstance(exc, psycopg.OperationalError | ConnectionError | TimeoutError)
