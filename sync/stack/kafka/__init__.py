"""The embedded Apache Kafka cluster: jars from Maven Central, three KRaft nodes."""

from sync.stack.kafka.cluster import KafkaCluster
from sync.stack.kafka.properties import Durability, KafkaNode

__all__ = ["Durability", "KafkaCluster", "KafkaNode"]
