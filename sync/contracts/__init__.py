"""Avro contracts: load ``schemas/avro/``, wrap rows in the change-event envelope, and translate
between :class:`~sync.types.ChangeEvent` and Confluent-framed Avro bytes."""

from sync.contracts.columns import Column, columns_of
from sync.contracts.envelope import envelope_schema
from sync.contracts.loader import Contract, default_schemas_dir, load_contract, load_contracts
from sync.contracts.serde import EventCodec, frame, unframe

__all__ = [
    "Column",
    "Contract",
    "EventCodec",
    "columns_of",
    "default_schemas_dir",
    "envelope_schema",
    "frame",
    "load_contract",
    "load_contracts",
    "unframe",
]
