#!/bin/bash
# Entry point of the Confluent Schema Registry under compose.secure.yaml: its Kafka store logs
# in as principal schema-registry, with the password read from a secret file at start.
set -euo pipefail
password=$(cat /run/secrets/kafka-schema-registry)
export SCHEMA_REGISTRY_KAFKASTORE_SASL_JAAS_CONFIG="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"schema-registry\" password=\"$password\";"
exec /etc/confluent/docker/run
