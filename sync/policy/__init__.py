"""Subscription policy: who receives which part of which topic, and why.

- :mod:`.manifest`: the federation manifest (one YAML file): agencies, the sources they
  publish, and subscriptions with their purpose, legal basis, allowed fields, row filter and
  transforms; loaded safely and checked against the contracts (:class:`ManifestError`).
- :mod:`.filters`: the row-filter language: parsed, never evaluated as code; checked against
  a contract; evaluated on rows with SQL's three-valued logic; rendered as SQL for ``verify``.
- :mod:`.transforms`: ``mask``, ``hash`` (keyed pseudonyms) and ``year``.
- :mod:`.projection`: a subscription applied to a contract: the subscriber's schema and rows,
  and the decision (upsert, delete, skip) each change becomes for its replica.

Pure logic: nothing here talks to a server. The processor builds one :class:`Projection` per
subscription and passes every decoded event through :meth:`Projection.project_event`.
"""

from sync.policy.filters import FilterError, check_filter, evaluate, matches, parse_filter, to_sql
from sync.policy.manifest import FEDERATION_FILE, load_manifest
from sync.policy.models import Agency, Manifest, ManifestError, Source, Subscription
from sync.policy.projection import (
    Decision,
    DecisionKind,
    Projection,
    project_contract,
    project_key_schema,
    project_row,
    project_schema,
)
from sync.policy.transforms import Hash, Mask, Transform, Year, read_hash_keys

__all__ = [
    "FEDERATION_FILE",
    "Agency",
    "Decision",
    "DecisionKind",
    "FilterError",
    "Hash",
    "Manifest",
    "ManifestError",
    "Mask",
    "Projection",
    "Source",
    "Subscription",
    "Transform",
    "Year",
    "check_filter",
    "evaluate",
    "load_manifest",
    "matches",
    "parse_filter",
    "project_contract",
    "project_key_schema",
    "project_row",
    "project_schema",
    "read_hash_keys",
    "to_sql",
]
