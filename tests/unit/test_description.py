"""``stack.json``: written atomically, read back whole, and looked up by agency and process name
with errors that say what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.errors import ConfigError
from sync.stack.description import FILE_NAME, DatabaseEntry, ProcessEntry, StackDescription


def description() -> StackDescription:
    return StackDescription(
        data_dir="/var/lib/govsync",
        bootstrap="127.0.0.1:9092",
        registry_url="http://127.0.0.1:8081",
        postgres_port=54321,
        databases=[
            DatabaseEntry("population", "source", "postgresql://u@h/population", "population"),
            DatabaseEntry("tax", "replica", "postgresql://u@h/tax_replica", "tax_replica"),
            DatabaseEntry("", "registry", "postgresql://u@h/registry", "registry"),
        ],
        processes=[
            ProcessEntry("registry", "registry", 1001, "http://127.0.0.1:9100/metrics"),
            ProcessEntry("connector-population", "connector", 1002, log="/logs/c.log", restarts=2),
            ProcessEntry("processor-tax", "processor", 1003),
        ],
    )


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    original = description()
    path = original.write(tmp_path)
    assert path == tmp_path / FILE_NAME
    assert StackDescription.read(path) == original


def test_read_accepts_the_data_directory(tmp_path: Path) -> None:
    original = description()
    original.write(tmp_path)
    assert StackDescription.read(tmp_path) == original


def test_read_gives_entries_not_dicts(tmp_path: Path) -> None:
    read = StackDescription.read(description().write(tmp_path))
    assert all(isinstance(d, DatabaseEntry) for d in read.databases)
    assert all(isinstance(p, ProcessEntry) for p in read.processes)


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    description().write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


def test_write_replaces_the_previous_description(tmp_path: Path) -> None:
    first = description()
    first.write(tmp_path)
    second = description()
    second.processes[1].pid = 2002
    second.processes[1].restarts = 3
    second.write(tmp_path)
    assert StackDescription.read(tmp_path).process("connector-population").pid == 2002
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]


def test_written_file_is_plain_json_for_other_tools(tmp_path: Path) -> None:
    raw = json.loads(description().write(tmp_path).read_text(encoding="utf-8"))
    assert raw["bootstrap"] == "127.0.0.1:9092"
    assert raw["version"] == 1
    assert raw["broker_storage"] == "memory://tansu/"
    assert raw["processes"][0] == {
        "name": "registry",
        "role": "registry",
        "pid": 1001,
        "metrics_url": "http://127.0.0.1:9100/metrics",
        "log": None,
        "restarts": 0,
    }


def test_read_fills_defaults_of_an_older_minimal_file(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    minimal = {"data_dir": "d", "bootstrap": "b", "registry_url": "r", "postgres_port": 1}
    path.write_text(json.dumps(minimal), encoding="utf-8")
    read = StackDescription.read(path)
    assert read.databases == [] and read.processes == []
    assert read.version == 1


def test_unicode_survives(tmp_path: Path) -> None:
    original = description()
    original.data_dir = "/srv/Bộ Công an/govsync"
    original.write(tmp_path)
    assert StackDescription.read(tmp_path).data_dir == "/srv/Bộ Công an/govsync"


# ---- lookups -----------------------------------------------------------------------------


def test_database_is_found_by_agency_and_role() -> None:
    entry = description().database("tax", "replica")
    assert entry.dbname == "tax_replica"
    assert description().database("population", "source").dbname == "population"


def test_missing_database_names_role_and_agency() -> None:
    expected = r"stack\.json has no replica database for agency 'health'"
    with pytest.raises(ConfigError, match=expected):
        description().database("health", "replica")


def test_database_of_the_wrong_role_is_not_returned() -> None:
    with pytest.raises(ConfigError, match="no source database for agency 'tax'"):
        description().database("tax", "source")


def test_process_is_found_by_name() -> None:
    entry = description().process("connector-population")
    assert (entry.pid, entry.restarts, entry.log) == (1002, 2, "/logs/c.log")


def test_missing_process_is_named() -> None:
    with pytest.raises(ConfigError, match=r"stack\.json has no process named 'processor-health'"):
        description().process("processor-health")


# ---- unreadable files --------------------------------------------------------------------


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / FILE_NAME
    with pytest.raises(ConfigError) as caught:
        StackDescription.read(path)
    assert str(path) in str(caught.value)
    assert "cannot read the stack description" in str(caught.value)


def test_empty_data_directory_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        StackDescription.read(tmp_path)
    assert str(tmp_path / FILE_NAME) in str(caught.value)


@pytest.mark.parametrize("text", ["", '{"data_dir": ', "not json", '{"a": 1'])
def test_corrupt_file_is_a_config_error_naming_the_path(tmp_path: Path, text: str) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        StackDescription.read(path)
    assert str(path) in str(caught.value)
