"""``govsync schemas register / check / diff`` against the session's registry, on a copy of a
fixture contract whose domain is unique to the test, so its subjects are its own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka.schema_registry import SchemaRegistryClient

from sync.cli.main import cli

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

GOOD = Path(__file__).resolve().parents[1] / "fixtures" / "contracts" / "good"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["schemas", *args], catch_exceptions=False)


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


@pytest.fixture
def contracts(tmp_path: Path) -> tuple[Path, str]:
    """(schemas dir, domain): the fixture's civil/birth contract under a unique domain."""
    domain = f"cli{uuid.uuid4().hex[:10]}"
    root = tmp_path / "avro"
    shutil.copytree(GOOD / "civil", root / domain)
    for path in (root / domain).glob("*.avsc"):
        document = read(path)
        document["namespace"] = f"vn.gov.{domain}"
        write(path, document)
    return root, domain


def add_field(path: Path, field: dict[str, Any]) -> None:
    document = read(path)
    document["fields"].append(field)
    write(path, document)


def test_register_check_and_diff(registry_url: str, contracts: tuple[Path, str]) -> None:
    root, domain = contracts
    where = ["--registry-url", registry_url, "--schemas-dir", str(root)]
    key, value = f"{domain}.birth-key", f"{domain}.birth-value"

    first = run("register", *where)
    assert first.exit_code == 0, first.output
    lines = {line.split()[0]: line for line in first.output.splitlines()}
    assert set(lines) == {key, value}
    for line in lines.values():
        assert " version 1 " in line and "FULL_TRANSITIVE" in line and line.endswith("registered")

    again = run("register", *where, "--json")
    assert again.exit_code == 0, again.output
    registered = {r["subject"]: r for r in json.loads(again.output)}
    assert {r["created"] for r in registered.values()} == {False}
    assert {s: r["version"] for s, r in registered.items()} == {key: 1, value: 1}
    with SchemaRegistryClient({"url": registry_url}) as client:
        assert client.get_compatibility(value) == "FULL_TRANSITIVE"
        assert client.get_latest_version(value).schema_id == registered[value]["id"]

    clean = run("check", *where)
    assert clean.exit_code == 0, clean.output
    assert f"ok        {key}: FULL_TRANSITIVE against version 1" in clean.output
    assert "accepted 2, new 0, rejected 0; lint: no problems" in clean.output

    same = run("diff", value, *where)
    assert same.exit_code == 0, same.output
    assert "changes:    none, the local contract is version 1" in same.output

    # An incompatible edit: a required field old data has no value for.
    add_field(
        root / domain / "birth.avsc",
        {
            "name": "birth_place",
            "type": "string",
            "classification": "personal",
            "doc": "Commune where the child was born.",
        },
    )
    rejected = run("check", *where)
    assert rejected.exit_code == 1, rejected.output
    assert f"REJECTED  {value}: FULL_TRANSITIVE against version 1" in rejected.output
    assert "birth_place" in rejected.output  # Avro's reason names the field
    assert f"ok        {key}" in rejected.output
    assert "accepted 1, new 0, rejected 1" in rejected.output

    described = run("diff", value, *where)
    assert described.exit_code == 0, described.output
    assert (
        "before.birth_place: field added without a default (type string): the new schema "
        "cannot read data written before it"
    ) in described.output
    verdicts = {
        parts[0]: parts[1]
        for line in described.output.splitlines()
        if (parts := line.split()) and parts[0].startswith(("BACKWARD", "FORWARD", "FULL", "NONE"))
    }
    assert verdicts == {
        "BACKWARD": "no",
        "BACKWARD_TRANSITIVE": "no",
        "FORWARD": "yes",
        "FORWARD_TRANSITIVE": "yes",
        "FULL": "no",
        "FULL_TRANSITIVE": "no",
        "NONE": "yes",
    }
    assert "FULL_TRANSITIVE      no  <- configured" in described.output

    as_json = json.loads(run("diff", value, *where, "--json").output)
    assert as_json["latest_version"] == 1 and as_json["configured_compatibility"] == (
        "FULL_TRANSITIVE"
    )
    assert [c["kind"] for c in as_json["changes"]] == ["field_added_without_default"]
    assert as_json["changes"][0]["path"] == "before.birth_place"

    # registering the incompatible contract is refused and says so
    refused = run("register", *where)
    assert refused.exit_code == 1
    assert f"{value}  REFUSED  409" in refused.output


def test_new_subjects_pass_and_a_compatible_edit_is_accepted(
    registry_url: str, contracts: tuple[Path, str]
) -> None:
    root, domain = contracts
    where = ["--registry-url", registry_url, "--schemas-dir", str(root)]
    value = f"{domain}.birth-value"
    unregistered = run("check", *where)
    assert unregistered.exit_code == 0, unregistered.output
    assert f"new       {value}: not registered yet" in unregistered.output
    nothing = run("diff", value, *where)
    assert "registered: nothing yet" in nothing.output

    assert run("register", *where).exit_code == 0
    add_field(
        root / domain / "birth.avsc",
        {
            "name": "certificate_number",
            "type": ["null", "string"],
            "default": None,
            "classification": "internal",
            "doc": "Number printed on the birth certificate.",
        },
    )
    accepted = run("check", *where)
    assert accepted.exit_code == 0, accepted.output
    described = run("diff", value, *where)
    assert "before.certificate_number: field added with default null (type null | string)" in (
        described.output
    )
    assert run("register", *where).exit_code == 0
    with SchemaRegistryClient({"url": registry_url}) as client:
        assert client.get_versions(value) == [1, 2]


def test_check_fails_on_lint_and_register_refuses(
    registry_url: str, contracts: tuple[Path, str]
) -> None:
    root, domain = contracts
    where = ["--registry-url", registry_url, "--schemas-dir", str(root)]
    add_field(root / domain / "birth.avsc", {"name": "order", "type": ["null", "string"]})
    checked = run("check", *where)
    assert checked.exit_code == 1
    assert "field 'order': field name is an SQL reserved word" in checked.output
    assert "field 'order': has no doc" in checked.output
    refused = CliRunner().invoke(cli, ["schemas", "register", *where])
    assert refused.exit_code == 1
    assert "nothing registered" in refused.output
    with SchemaRegistryClient({"url": registry_url}) as client:
        assert f"{domain}.birth-value" not in client.get_subjects()


def test_unknown_subject_is_a_usage_error(registry_url: str, contracts: tuple[Path, str]) -> None:
    root, _ = contracts
    where = ["--registry-url", registry_url, "--schemas-dir", str(root)]
    result = CliRunner().invoke(cli, ["schemas", "diff", "nowhere.nothing-value", *where])
    assert result.exit_code != 0
    assert result.exit_code == 1
    assert "Error: no contract has the subject 'nowhere.nothing-value'" in result.output


def test_lint_runs_as_a_module(contracts: tuple[Path, str]) -> None:
    root, domain = contracts
    command = [sys.executable, "-m", "sync.cli", "schemas", "lint", "--schemas-dir", str(root)]
    clean = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert clean.returncode == 0, clean.stderr
    assert "1 contract (2 schema files)" in clean.stdout
    (root / domain / "birth-key.avsc").unlink()
    broken = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1
    assert "birth.avsc: the contract has no key schema birth-key.avsc beside it" in broken.stdout
