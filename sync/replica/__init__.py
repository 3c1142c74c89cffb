"""Subscriber replicas: tables created from contracts and following their compatible changes,
batched version-guarded apply, and the consumed positions committed in the same database
transaction as the rows."""

from sync.replica.apply import Applier, ApplyResult, Delivery
from sync.replica.deletes import DeletedKeys, deletes_key_name
from sync.replica.evolution import TableChanges
from sync.replica.layout import ReplicaTable

__all__ = [
    "Applier",
    "ApplyResult",
    "DeletedKeys",
    "Delivery",
    "ReplicaTable",
    "TableChanges",
    "deletes_key_name",
]
