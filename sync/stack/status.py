"""The health of a running stack, from ``stack.json`` and each process's ``/metrics``."""

from __future__ import annotations

import os
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from sync.stack.description import ProcessEntry, StackDescription

Samples = dict[str, list[tuple[dict[str, str], float]]]


@dataclass
class ProcessHealth:
    name: str
    role: str
    pid: int
    alive: bool
    scraped: bool
    problems: list[str] = field(default_factory=list)
    figures: dict[str, float | str] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)  # a processor's role per agency

    @property
    def healthy(self) -> bool:
        return self.alive and self.scraped and not self.problems


def scrape(url: str, timeout: float = 3.0) -> Samples:
    """Every sample of a /metrics page, by sample name."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        text = response.read().decode()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if labels.items() <= lab.items())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_process(entry: ProcessEntry) -> ProcessHealth:
    """A process of a deployment (pid 0: not this machine's) is alive when its page answers."""
    alive = _alive(entry.pid) if entry.pid > 0 else True
    health = ProcessHealth(entry.name, entry.role, entry.pid, alive, scraped=True)
    if not health.alive:
        health.problems.append("not running")
    if entry.metrics_url is None:
        return health
    try:
        samples = scrape(entry.metrics_url)
    except OSError as exc:
        health.scraped = False
        health.problems.append(f"metrics unreachable: {exc}")
        return health
    if entry.role == "connector":
        _connector_figures(health, samples)
    elif entry.role == "processor":
        _processor_figures(health, samples)
    return health


def _connector_figures(health: ProcessHealth, samples: Samples) -> None:
    health.figures.update(
        {
            "produced": _total(samples, "govsync_connector_events_produced_total"),
            "slot lag bytes": _total(samples, "govsync_connector_slot_lag_bytes"),
            "behind s": round(_total(samples, "govsync_connector_behind_source_seconds"), 3),
            "produce errors": _total(samples, "govsync_connector_produce_errors_total"),
        }
    )


def _processor_figures(health: ProcessHealth, samples: Samples) -> None:
    stopped = _total(samples, "govsync_processor_subscription_state", state="stopped")
    newest = [
        v for _, v in samples.get("govsync_processor_newest_applied_commit_timestamp_seconds", [])
    ]
    health.members = _members(samples)
    health.figures.update(
        {
            "state": "stopped" if stopped else "running",
            "member": summarize_roles(health.members),
            "applied": _total(samples, "govsync_processor_events_applied_total"),
            "lag": _total(samples, "govsync_processor_consumer_lag"),
            "freshness s": round(time.time() - max(newest), 1) if newest else "-",
            "dead letters": _total(samples, "govsync_processor_events_dead_lettered_total"),
        }
    )
    if stopped:
        health.problems.append("subscription stopped (see its log)")


def _members(samples: Samples) -> dict[str, str]:
    """The worker's role per hosted agency: active, standby, or stopped (its subscription)."""
    stopped = {
        labels["agency"]
        for labels, value in samples.get("govsync_processor_subscription_state", [])
        if labels.get("state") == "stopped" and value
    }
    return {
        labels["agency"]: "stopped" if labels["agency"] in stopped else labels["role"]
        for labels, value in samples.get("govsync_processor_member_role", [])
        if value
    }


def summarize_roles(members: dict[str, str]) -> str:
    """One role when every hosted agency has it, else how many have each."""
    counts = Counter(members.values())
    if len(counts) <= 1:
        return next(iter(counts), "-")
    return ", ".join(f"{role} {n}" for role, n in sorted(counts.items()))


def stack_health(description: StackDescription) -> list[ProcessHealth]:
    report = [check_process(entry) for entry in description.processes]
    flag_agencies_without_active_member(report)
    return report


def flag_agencies_without_active_member(report: list[ProcessHealth]) -> None:
    """Several workers may host an agency, one active and the others standing by: an agency
    whose every worker stands by has no one applying to its replica (a stopped subscription
    is reported as such)."""
    active = {a for h in report if h.alive for a, role in h.members.items() if role == "active"}
    for health in report:
        waiting = sorted(
            a for a, role in health.members.items() if role == "standby" and a not in active
        )
        if waiting:
            health.problems.append(f"no active member for {', '.join(waiting)}")
