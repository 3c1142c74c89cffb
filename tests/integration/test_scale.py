"""One worker process serves the 85 subscribers of the mission (22 ministries, 63 provinces),
each in its own consumer group and replica; verify proves every replica equals its projection,
and a change reaches all of them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import pytest

from sync.policy.national import national_agencies, national_manifest_yaml
from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from tests.fixtures.pipeline import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM population.citizen").fetchone()
        except psycopg.errors.UndefinedTable:
            return -1
    return int(row[0]) if row else 0


def held(dsn: str, personal_id: str) -> str | None:
    """The province the replica holds for the citizen, None when it holds no such row."""
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT province_code FROM population.citizen WHERE personal_id = %s",
                (personal_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else str(row[0])


def test_one_worker_serves_85_subscribers(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    clock = time.monotonic()
    pipeline = pipeline_factory(citizens=300)
    manifest = tmp_path / "national.yaml"
    manifest.write_text(national_manifest_yaml())
    agencies = national_agencies()
    assert len(agencies) == 85
    replicas = {a: stack.create_database(f"{pipeline.name}_{a}") for a in agencies}
    prepared = time.monotonic() - clock
    first = agencies[0]
    template = replicas[first].replace(f"{pipeline.name}_{first}", f"{pipeline.name}_{{agency}}")
    assert all(template.replace("{agency}", a) == dsn for a, dsn in replicas.items())

    pipeline.start_connector()
    started = time.monotonic()
    worker = pipeline.start_processor("*", template, manifest=str(manifest))
    source = pipeline.source_rows()
    expected = {
        a: len(source)
        if not a.startswith("p")
        else sum(1 for r in source.values() if r[5] == a[1:])
        for a in agencies
    }
    pending = set(agencies)

    def all_hold_their_share() -> bool:
        pending.difference_update([a for a in pending if count(replicas[a]) == expected[a]])
        return not pending

    wait_until(all_hold_their_share, 240, "all 85 replicas to hold their share", 0.5)
    converged = time.monotonic() - started

    # a citizen moves from Hanoi to Ho Chi Minh City: every ministry sees the move, the
    # province of origin loses the citizen, the new one gains them
    mover = next(pid for pid, row in source.items() if row[5] == "01")
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET province_code = '79', district_code = '760' WHERE personal_id = %s",
            (mover,),
        )
    ministries = [a for a in agencies if not a.startswith("p")]

    def moved() -> bool:
        return (
            held(replicas["p01"], mover) is None
            and held(replicas["p79"], mover) == "79"
            and all(held(replicas[m], mover) == "79" for m in ministries)
        )

    pipeline.wait_for(moved, "the move to reach the 85 replicas", 60)
    data_dir = pipeline.describe(replicas, manifest)
    clock = time.monotonic()
    report = verify(data_dir)
    verified_in = time.monotonic() - clock
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    verified = {r["agency"] for r in json.loads(report.stdout)}
    assert verified == set(agencies)

    process = psutil.Process(worker.pid)
    rss = process.memory_info().rss
    print(
        f"\n85 subscribers on one worker: databases made in {prepared:.1f} s, "
        f"converged in {converged:.1f} s, verified in {verified_in:.1f} s, "
        f"RSS {rss / 2**20:.0f} MiB, {process.num_threads()} threads"
    )
