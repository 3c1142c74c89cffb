"""The brokers side by side: the newest run of each broker in a results directory, and a table
of their figures for the report.

Each column is one run, on its own broker, so each ratio is to that run's own raw ceilings.
Only runs of the same mode are compared (quick and full sizes differ by twenty times). Runs
written before the broker was recorded were all on Tansu.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench.markdown import DASH, mebibytes, millis, per_second, share, table
from bench.targets import MACHINE, cores_used, lowest_ceiling

log = logging.getLogger(__name__)

Results = Mapping[str, Any]
Row = tuple[str, Callable[[Results], str]]

BROKERS = ("tansu", "kafka")
DEFAULT_BROKER = "tansu"


def broker_of(results: Results) -> str:
    return str(results.get("broker") or DEFAULT_BROKER)


def newest_by_broker(directory: Path, mode: str) -> dict[str, Results]:
    """The newest ``mode`` run of each broker among the results files of ``directory`` (their
    names start with the UTC time the run started, so they sort by it)."""
    newest: dict[str, Results] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if isinstance(results, dict) and results.get("mode") == mode and "end_to_end" in results:
            newest[broker_of(results)] = results
    return newest


def comparison_section(runs: Mapping[str, Results]) -> list[str]:
    """A table with one column per broker (Tansu first), one row per figure."""
    brokers = sorted(runs, key=lambda b: (BROKERS.index(b) if b in BROKERS else len(BROKERS), b))
    columns = [runs[broker] for broker in brokers]
    rows = [(label, *(_cell(figure, run) for run in columns)) for label, figure in _rows(columns)]
    return [
        *table(("", *brokers), rows),
        "Each column is the newest run of that broker in the results directory, in the same "
        "mode. Each ratio is to the lowest raw ceiling, or the raw produce ceiling, measured "
        "in that same run on its own broker. Runs taken at different times met different "
        "load on the machine: read the load averages before the differences. Broker memory "
        "is the broker's processes together (Kafka: its three nodes).",
        "",
    ]


def _cell(figure: Callable[[Results], str], run: Results) -> str:
    try:
        return figure(run)
    except (KeyError, StopIteration, TypeError, ValueError, ZeroDivisionError):
        return DASH


def _rows(runs: list[Results]) -> list[Row]:
    rows: list[Row] = [
        ("run", lambda r: f"{r['started']}, {r['duration_s']:.0f} s"),
        ("broker", lambda r: str(r["machine"]["broker"])),
        ("load average, start → end", _load),
        ("raw produce, messages/s", lambda r: per_second(r["ceilings"]["produce"]["rate"])),
        ("raw consume, messages/s", lambda r: per_second(r["ceilings"]["consume"]["rate"])),
        ("lowest raw ceiling", _lowest),
    ]
    for name in _union(run.get("end_to_end", {}) for run in runs):
        rows += _backlog_rows(name)
    for offered in _union([s["offered"] for s in run.get("latency", [])] for run in runs):
        rows += _latency_rows(offered)
    rows += [
        ("one subscriber draining, events/s", lambda r: per_second(r["solo"]["drain_rate"])),
        ("broker peak RSS / PSS, MiB", _broker_memory),
    ]
    return rows


def _union(keys: Any) -> list[Any]:
    """Every key of every run, in first-seen order."""
    return list(dict.fromkeys(key for each in keys for key in each))


def _load(run: Results) -> str:
    machine = run["machine"]
    return f"{machine['load_average'][0]:.2f} → {machine['load_average_end'][0]:.2f}"


def _lowest(run: Results) -> str:
    name, rate = lowest_ceiling(run["ceilings"])
    return f"{run['ceilings'][name]['stage']}, {per_second(rate)}/s"


def _backlog_rows(name: str) -> list[Row]:
    def backlog(run: Results) -> Results:
        return run["end_to_end"][name]  # type: ignore[no-any-return]

    def of_lowest(run: Results) -> str:
        return share(backlog(run)["rate"] / lowest_ceiling(run["ceilings"])[1])

    def of_produce(run: Results) -> str:
        return share(backlog(run)["rate"] / run["ceilings"]["produce"]["rate"])

    def cores(role: str) -> Callable[[Results], str]:
        return lambda run: f"{cores_used(backlog(run))[role]:.2f}"

    return [
        (f"end to end, {name}, changes/s", lambda r: per_second(backlog(r)["rate"])),
        (f"end to end, {name}, of lowest raw ceiling", of_lowest),
        (f"end to end, {name}, of raw produce ceiling", of_produce),
        (f"broker cores, {name} drain", cores("broker")),
        (f"all processes' cores, {name} drain", cores(MACHINE)),
    ]


def _latency_rows(offered: int) -> list[Row]:
    def step(run: Results) -> Results:
        return next(s for s in run["latency"] if s["offered"] == offered)

    def percentiles(run: Results) -> str:
        found = step(run)
        return " / ".join(millis(found.get(p)) for p in ("p50", "p95", "p99"))

    def to_broker(run: Results) -> str:
        found = step(run).get("to_broker") or {}
        return " / ".join(millis(found.get(p)) for p in ("p50", "p99"))

    return [
        (f"latency at {offered:,}/s, p50 / p95 / p99", percentiles),
        (f"latency at {offered:,}/s to the broker, p50 / p99", to_broker),
    ]


def _broker_memory(run: Results) -> str:
    broker = run["memory"]["broker"]
    return f"{mebibytes(broker['rss'])} / {mebibytes(broker['pss'])}"
