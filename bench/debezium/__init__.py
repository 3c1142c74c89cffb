"""govsync's connector beside Debezium's PostgreSQL connector, on the same rows of the same
source, one after the other on the three-node Apache Kafka cluster: ``python -m bench.debezium``.

Debezium runs as it is usually deployed, in a Kafka Connect worker (standalone mode), with the
jars of ``pom.xml`` beside this package fetched from Maven Central into a cache outside the
repository.
"""
