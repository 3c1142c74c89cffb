"""The embedded federation: real PostgreSQL and a Kafka-protocol broker started from wheels,
the registry, connectors and processors as supervised child processes, described in
``stack.json`` so scripts and tests can find them."""
