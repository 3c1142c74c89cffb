"""govsync: every committed change in a source agency's database, delivered to exactly the
subscribers entitled to it, through Kafka topics with reviewed Avro contracts."""

__version__ = "0.1.0"
