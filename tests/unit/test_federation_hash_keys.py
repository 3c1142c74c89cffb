"""govsync up gives every subscribing agency the key of its remembered deletes, in the hash
keys file it makes once per data directory, and adds it to a file made before."""

from __future__ import annotations

import json
from pathlib import Path

from sync.stack.federation import EmbeddedFederation, FederationOptions


def test_every_agency_has_its_remembered_deletes_key(tmp_path: Path) -> None:
    federation = EmbeddedFederation(FederationOptions(tmp_path))
    keys = json.loads(federation.hash_keys_file.read_text())
    assert {f"remembered-deletes.{a}" for a in federation.subscribers} <= set(keys)
    assert all(len(secret) == 64 for secret in keys.values())
    assert federation.hash_keys_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(federation.hash_keys_file.read_text()) == keys, "made once"


def test_a_file_made_before_keeps_its_keys_and_gains_the_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "hash_keys.json").write_text(json.dumps({"gso_pseudonym": "p" * 64}))
    federation = EmbeddedFederation(FederationOptions(tmp_path))
    keys = json.loads(federation.hash_keys_file.read_text())
    assert keys["gso_pseudonym"] == "p" * 64
    assert "remembered-deletes.gso" in keys
