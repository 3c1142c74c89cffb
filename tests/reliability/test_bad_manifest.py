"""A bad federation manifest stops a processor before it reads or writes anything: the real
``govsync processor run`` exits 2 with the file, the place in it and what is wrong. Prints the
table of what the user saw. (tests/unit/test_manifest.py has every case of the loader.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync.policy import FEDERATION_FILE

pytestmark = pytest.mark.brokerless

Change = Callable[[dict[str, Any]], None]


def _hanoi(data: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in data["subscriptions"] if s["agency"] == "hanoi")


CASES: dict[str, tuple[Change | str, str]] = {
    "unknown agency": (
        lambda d: _hanoi(d).update(agency="danang"),
        "unknown agency 'danang'",
    ),
    "unknown field": (
        lambda d: _hanoi(d)["fields"].append("salary"),
        "'salary'",
    ),
    "quote and semicolon in a field": (
        lambda d: _hanoi(d)["fields"].append('x"; drop table citizen'),
        "unsafe identifier",
    ),
    "SQL keyword as a table": (
        lambda d: d["sources"][0].update(tables=["select"]),
        "unsafe identifier 'select'",
    ),
    "semicolon in a row filter": (
        lambda d: _hanoi(d).update(row_filter="province_code == '01'; delete from citizen"),
        "unexpected character ';'",
    ),
    "a subscription without its legal basis": (
        lambda d: _hanoi(d).pop("legal_basis"),
        "legal_basis",
    ),
    "YAML tag constructing an object": (
        "version: 1\nagencies:\n  - code: !!python/object/apply:os.system ['echo owned']\n",
        "YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
}


def bad_manifest(directory: Path, change: Change | str) -> Path:
    path = directory / "manifest.yaml"
    if isinstance(change, str):
        path.write_text(change)
        return path
    data = yaml.safe_load(FEDERATION_FILE.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def run_processor(manifest: Path | None, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVSYNC_")},
        "GOVSYNC_AGENCY": "hanoi",
        "GOVSYNC_REPLICA_DSN": "host=127.0.0.1 port=1 dbname=never",
        "GOVSYNC_BOOTSTRAP": "127.0.0.1:1",
        "GOVSYNC_REGISTRY_URL": "http://127.0.0.1:1",
        **({"GOVSYNC_MANIFEST": str(manifest)} if manifest else {}),
        **{f"GOVSYNC_{name.upper()}": value for name, value in settings.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "processor", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_manifest_stops_the_processor_before_anything_runs(tmp_path: Path, case: str) -> None:
    change, words = CASES[case]
    manifest = bad_manifest(tmp_path, change)
    result = run_processor(manifest)
    assert result.returncode == 2, result.stderr[-2000:]
    error = next(line for line in result.stderr.splitlines() if "cannot run" in line)
    assert str(manifest) in error and words in error
    assert "Traceback" not in result.stderr
    assert "owned" not in result.stdout + result.stderr, "no object was constructed"
    assert "rdkafka" not in result.stderr, "it stopped before connecting to the broker"
    print(f"\n{case} | {error.split('cannot run: ')[1]} | exit 2, nothing started | — | 0")


# deny by default: what a processor refuses to do unless a development setting says so
DENIALS: dict[str, tuple[Path | None, dict[str, str], str]] = {
    "no manifest": (None, {"topics": '["population.citizen"]'}, "no manifest (GOVSYNC_MANIFEST)"),
    "a manifest without the audit": (FEDERATION_FILE, {}, "GOVSYNC_AUDIT_DSN is unset"),
    "unrestricted beside a manifest": (
        FEDERATION_FILE,
        {"unrestricted": "true", "audit_dsn": "host=127.0.0.1 port=1"},
        "GOVSYNC_UNRESTRICTED is for a processor without a manifest",
    ),
    "a manifest without the remembered deletes' key": (
        FEDERATION_FILE,
        {"audit_dsn": "host=127.0.0.1 port=1"},
        "no secret for hash key 'remembered-deletes.hanoi' in GOVSYNC_HASH_KEYS_FILE (unset)",
    ),
}


@pytest.mark.parametrize("case", list(DENIALS))
def test_a_processor_without_policy_or_audit_refuses_to_start(case: str) -> None:
    manifest, settings, words = DENIALS[case]
    result = run_processor(manifest, **settings)
    assert result.returncode == 2, result.stderr[-2000:]
    error = next(line for line in result.stderr.splitlines() if "cannot run" in line)
    assert words in error
    assert "rdkafka" not in result.stderr, "it stopped before connecting to the broker"
    print(f"\n{case} | {error.split('cannot run: ')[1]} | exit 2, nothing started")
