"""A Confluent Schema Registry compatible REST service for Avro, stored in PostgreSQL.

govsync's producers and consumers use Confluent's own clients (``SchemaRegistryClient``,
``AvroSerializer``/``AvroDeserializer``); this package gives them a registry that keeps its
state in the federation's PostgreSQL instead of a Kafka topic, so contracts survive with the
databases and need no extra JVM service.

Layers, each in its own module:

* :mod:`~sync.registry.model`: compatibility levels, modes, schema records, error codes;
* :mod:`~sync.registry.limits`, :mod:`~sync.registry.avro_rules`: the bounds on what is
  parsed; parsing, canonical identity, Avro compatibility checks;
* :mod:`~sync.registry.parsing`, :mod:`~sync.registry.parser_pool`: that CPU work, in worker
  processes away from the event loop;
* :mod:`~sync.registry.store` and :mod:`~sync.registry.audit`: the tables and queries
  (:class:`PgStore`), and the append-only record of writes;
* :mod:`~sync.registry.service`, :mod:`~sync.registry.reads` and :mod:`~sync.registry.admin`:
  the registry's semantics;
* :mod:`~sync.registry.http_io`, :mod:`~sync.registry.routes`,
  :mod:`~sync.registry.routes_admin`, :mod:`~sync.registry.access` and
  :mod:`~sync.registry.app`: the HTTP API, who may use it (:func:`create_app`);
* :mod:`~sync.registry.server`: the blocking entry point (:func:`serve`), TLS included.
"""

from sync.registry.app import create_app
from sync.registry.metrics import RegistryMetrics
from sync.registry.model import Compatibility, Mode
from sync.registry.server import serve
from sync.registry.store import PgStore

__all__ = ["Compatibility", "Mode", "PgStore", "RegistryMetrics", "create_app", "serve"]
