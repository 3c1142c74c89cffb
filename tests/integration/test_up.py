"""``govsync up``: the embedded federation a user starts with one command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from sync.stack.description import StackDescription
from sync.stack.ports import wait_until
from sync.stack.providers import broker_from_environment
from tests.fixtures.registry import http
from tests.integration.test_console import Browser

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_up(data_dir: Path, citizens: int = 400) -> subprocess.Popen[bytes]:
    log = open(data_dir.parent / f"{data_dir.name}-up.log", "ab")  # noqa: SIM115 - closed by the OS
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync.cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--citizens",
            str(citizens),
            "--broker",
            broker_from_environment(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def described(data_dir: Path) -> StackDescription:
    def complete() -> bool:
        path = data_dir / "stack.json"
        return path.exists() and {"connector", "processor"} <= {
            p["role"] for p in json.loads(path.read_text())["processes"]
        }

    wait_until(complete, 300, "stack.json naming the connector and the processor")
    return StackDescription.read(data_dir)


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def abort(up: subprocess.Popen[bytes]) -> None:
    """After a failure: stop ``govsync up`` and everything it started, as Ctrl-C would; kill it
    only if that does not end it."""
    up.send_signal(signal.SIGINT)
    try:
        up.wait(90)
    except subprocess.TimeoutExpired:
        abort(up)


def stop(up: subprocess.Popen[bytes], pids: list[int]) -> None:
    up.send_signal(signal.SIGINT)
    assert up.wait(120) == 0
    alive = [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], "govsync up leaves no process behind"


def console_reads_registry_and_audit(stack: StackDescription, data_dir: Path, source: str) -> None:
    """The console stack.json names logs in its dpo (password in DIR/console/passwords),
    lists the registry's subjects and answers about a demo citizen from the audit."""
    assert stack.console_url and stack.process("console").role == "console"
    browser = Browser(stack.console_url)
    assert browser.send("/subjects").location == "/login"
    password = (data_dir / "console" / "passwords" / "dpo").read_text().strip()
    assert browser.log_in("dpo", password).location == "/disclosures"
    assert "population.citizen-value" in browser.send("/subjects").text
    with psycopg.connect(source) as conn:
        row = conn.execute("SELECT min(personal_id) FROM citizen").fetchone()
    assert row is not None and row[0]
    token = browser.form_token(browser.send("/disclosures").text)
    answer = browser.send("/disclosures", {"personal_id": row[0], "form_token": token})
    assert answer.status == 200 and "Vietnam Social Security" in answer.text


def test_up_runs_supervises_stops_and_resumes(server_dir: Path) -> None:
    data_dir = server_dir / "federation"
    up = start_up(data_dir)
    try:
        stack = described(data_dir)
        source = stack.database("population", "source").dsn
        replica = stack.database("vss", "replica").dsn
        assert stack.bootstrap and stack.registry_url.startswith("http://127.0.0.1:")
        # every client authenticates to the registry, as where govsync is deployed
        assert http(stack.registry_url, "GET", "/subjects")[0] == 401
        admin = (data_dir / "registry" / "passwords" / "admin").read_text().strip()
        assert http(stack.registry_url, "GET", "/subjects", basic_auth=("admin", admin))[0] == 200
        roles = {p.role for p in stack.processes}
        assert {"database", "broker", "registry", "connector", "processor"} <= roles
        connectors = {p.name for p in stack.processes if p.role == "connector"}
        assert connectors == {
            f"connector-{a}" for a in ("population", "land", "business", "finance", "insurance")
        }
        assert {d.agency for d in stack.databases if d.role == "source"} == {
            "population",
            "land",
            "business",
            "finance",
            "insurance",
        }
        wait_until(
            lambda: count(replica, "SELECT count(*) FROM population.citizen") == 400,
            180,
            "the demo citizens in the replica",
        )
        console_reads_registry_and_audit(stack, data_dir, source)

        processor = stack.process("processor-vss")
        os.kill(processor.pid, signal.SIGKILL)
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("UPDATE citizen SET ward_code = '00001' WHERE province_code = '01'")
        wait_until(
            lambda: StackDescription.read(data_dir).process("processor-vss").pid != processor.pid,
            120,
            "stack.json naming the restarted processor",
        )
        assert StackDescription.read(data_dir).process("processor-vss").restarts == 1
        wait_until(
            lambda: (
                count(
                    replica,
                    "SELECT count(*) FROM population.citizen "
                    "WHERE province_code = '01' AND ward_code <> '00001'",
                )
                == 0
            ),
            180,
            "the replica to catch up after the processor restart",
        )
        pids = [p.pid for p in StackDescription.read(data_dir).processes]
    except BaseException:
        abort(up)
        raise
    stop(up, pids)

    up = start_up(data_dir)
    try:
        stack = described(data_dir)
        source = stack.database("population", "source").dsn
        replica = stack.database("vss", "replica").dsn
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("DELETE FROM citizen WHERE province_code = '48'")
        wait_until(
            lambda: (
                count(replica, "SELECT count(*) FROM population.citizen")
                == count(source, "SELECT count(*) FROM citizen")
            ),
            180,
            "the replica to follow changes after a restart",
        )
        assert count(source, "SELECT count(*) FROM govsync.snapshot_state") == 2  # both tables
        log = (data_dir / "logs" / "connector-population.log").read_text()
        assert log.count("snapshot of public.citizen starts") == 1, "nothing is snapshotted twice"
        pids = [p.pid for p in StackDescription.read(data_dir).processes]
    except BaseException:
        abort(up)
        raise
    stop(up, pids)
