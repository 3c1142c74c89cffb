"""Writer schemas by id, fetched from the registry once and kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sync.errors import DecodeError, RegistryUnavailable

NOT_FOUND_CODES = {40403, 40401, 40402}


class SchemaCache:
    def __init__(self, registry: str | Mapping[str, Any]) -> None:
        """``registry``: its URL, or the client's settings (credentials, CA: see
        :meth:`sync.config.KafkaSettings.registry_config`)."""
        config = {"url": registry, "timeout": 10} if isinstance(registry, str) else registry
        self._client = SchemaRegistryClient(dict(config))
        self._schemas: dict[int, Mapping[str, Any]] = {}
        self._refused: dict[int, str] = {}  # ids the registry refused to give, and why

    def lookup(self, schema_id: int) -> Mapping[str, Any]:
        """A schema already fetched; unknown ids are an error the caller dead-letters."""
        try:
            return self._schemas[schema_id]
        except KeyError:
            refused = self._refused.get(schema_id)
            if refused is not None:
                raise DecodeError(f"schema id {schema_id}: {refused}") from None
            raise DecodeError(f"unknown schema id {schema_id} in the registry") from None

    async def fetch(self, schema_ids: Iterable[int]) -> None:
        """Fetch the ids not seen yet. Registry outages raise :class:`RegistryUnavailable`;
        an id the registry does not have or refuses is reported by :meth:`lookup`, for the
        messages that use it alone."""
        for schema_id in set(schema_ids) - set(self._schemas):
            try:
                schema = await asyncio.to_thread(self._client.get_schema, schema_id)
            except SchemaRegistryError as exc:
                if exc.error_code in NOT_FOUND_CODES:
                    continue  # lookup() reports it for the events that use it
                if exc.http_status_code is not None and exc.http_status_code < 500:
                    self._refused[schema_id] = f"refused by the registry ({exc.error_code})"
                    continue
                message = f"registry error for schema id {schema_id}: {exc}"
                raise RegistryUnavailable(message) from exc
            except Exception as exc:
                raise RegistryUnavailable(f"registry unreachable: {exc}") from exc
            try:
                self._schemas[schema_id] = json.loads(schema.schema_str or "{}")
            except ValueError:
                self._refused[schema_id] = "the registry's answer is not JSON"
