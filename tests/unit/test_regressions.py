"""Bugs found by review, each pinned by the behaviour a user relies on."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from sync.contracts import EventCodec, load_contracts
from sync.errors import ConfigError, DecodeError, StackError
from sync.stack.description import StackDescription
from sync.stack.supervisor import Supervisor
from sync.types import Lsn, Op
from tests.unit.test_changes import CITIZEN_OID, row, run, transaction, update
from tests.unit.test_supervisor import spec

CITIZEN = load_contracts()["population.citizen"]


def _framed(schema_id: int, body: bytes) -> bytes:
    return struct.pack(">BI", 0, schema_id) + body


def test_a_writer_schema_that_does_not_resolve_is_a_decode_error() -> None:
    codec = EventCodec(CITIZEN)
    other = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}
    with pytest.raises(DecodeError, match="schema id 7"):
        codec.decode(_framed(7, b"\x02"), _framed(7, b"\x02"), {7: other}.__getitem__)


def test_an_unusable_writer_schema_is_a_decode_error() -> None:
    codec = EventCodec(CITIZEN)
    with pytest.raises(DecodeError, match="not a usable Avro schema"):
        codec.decode(_framed(3, b""), _framed(3, b""), {3: {"type": "nope"}}.__getitem__)


def test_magic_byte_is_reported_unsigned() -> None:
    codec = EventCodec(CITIZEN)
    with pytest.raises(DecodeError, match="wrong magic byte 255"):
        codec.decode(b"\xff\x00\x00\x00\x01", b"\xff\x00\x00\x00\x01", {}.__getitem__)


def test_an_update_with_a_full_old_tuple_keeps_its_before_image() -> None:
    event = run(transaction(update(row(notes="mới"), old=row(), kind=b"O"))).events[0]
    assert event.op is Op.UPDATE
    assert event.before is not None and event.before["notes"] == "ghi chú"


def test_a_tuple_shorter_than_its_relation_is_a_decode_error() -> None:
    short = b"I" + struct.pack("!I", CITIZEN_OID) + b"N" + struct.pack("!H", 1) + b"n"
    with pytest.raises(DecodeError):
        run(transaction(short))


@pytest.mark.parametrize("text", ["[]", "null", "{}", '{"data_dir": 1, "unknown": 2}'])
def test_a_stack_description_of_the_wrong_shape_names_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "stack.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"stack\.json"):
        StackDescription.read(path)


@pytest.mark.parametrize("text", ["0/100000000", "-1/0", "G/1", "1/2/3", "1/"])
def test_lsn_text_must_have_two_hex_halves(text: str) -> None:
    with pytest.raises(ValueError, match="not an LSN"):
        Lsn.parse(text)


def test_a_crash_loop_backs_off_exponentially(tmp_path: Path) -> None:
    supervisor = Supervisor()
    crashing = "import sys, time\ntime.sleep(0.2)\nsys.exit(1)"
    supervisor.start(spec(tmp_path, "flaky", crashing))
    waits: list[str] = []
    deadline = time.monotonic() + 20
    try:
        while len(waits) < 3 and time.monotonic() < deadline:
            waits += [m for m in supervisor.poll() if "restarting in" in m]
            time.sleep(0.05)
    finally:
        supervisor.stop_all(drain_timeout=0)
    assert [w.split("restarting in ")[1].split(" s")[0] for w in waits] == ["0.5", "1.0", "2.0"]


def test_a_process_that_never_started_is_not_supervised(tmp_path: Path) -> None:
    supervisor = Supervisor()
    with pytest.raises(StackError):
        supervisor.start(spec(tmp_path, "broken", "import sys; sys.exit(2)", ready=lambda: False))
    assert "broken" not in supervisor.processes
    assert supervisor.poll() == []
