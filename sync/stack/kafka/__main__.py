"""``python -m sync.stack.kafka``: fetch the Kafka jars now (CI, a laptop about to go offline)
and print where they are."""

from sync.stack.kafka.jars import ensure_jars

print(ensure_jars())
