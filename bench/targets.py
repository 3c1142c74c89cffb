"""The project's performance targets, whether a run met them, and what limits a run.

Targets (one subscriber, 2 cores):

- at least 14,000 changes/s end to end, streaming and from a snapshot, on the way to 20,000;
- at least half of the lowest raw ceiling of the stages the changes pass through;
- p99 end-to-end latency under 100 ms at an offered load of 1,000 changes/s;
- 85 subscribers on one worker: at most twice the cost of 10 (CPU per event, memory per
  subscriber), at least 7,500 events applied per second in all, under 1 GiB of RSS.

What limits a run is read from the CPU each process used during it: a govsync process is one
Python thread doing its stages one after the other, so one that keeps a core busy is the limit,
and its slowest stage alone says where the time goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Results = Mapping[str, Any]

E2E_RATE = 14_000.0  # this step's target
E2E_GOAL = 20_000.0  # the project's
CEILING_SHARE = 0.5
P99_SECONDS = 0.1
P99_LOAD = 1_000
COST_RATIO = 2.0  # 85 subscribers per worker against 10: CPU per event, memory per subscriber
MANY_RATE = 7_500.0  # 85 subscribers on one worker: events applied per second, in all
MANY_RSS = 1 << 30  # and the worker's memory
SATURATED = 0.85  # cores: a single-threaded process this busy is the limit

# the raw stages each pipeline process runs one after the other, in order
CHAINS: dict[str, tuple[str, ...]] = {
    "connector": ("pgoutput_read", "pgoutput_decode", "avro_encode", "produce"),
    "processor": ("consume", "avro_decode", "merge"),
}
PIPELINE_ROLES = ("connector", "processor")
MACHINE = "machine"  # CPU of every process on the machine, as the sampler reports it


def lowest_ceiling(ceilings: Mapping[str, Any]) -> tuple[str, float]:
    rated = {name: float(f["rate"]) for name, f in ceilings.items() if f.get("rate")}
    name = min(rated, key=rated.__getitem__)
    return name, rated[name]


def serial_estimate(ceilings: Mapping[str, Any], stages: tuple[str, ...]) -> float | None:
    """Rate of one thread doing ``stages`` one after the other, from their raw ceilings."""
    rates = [ceilings[s]["rate"] for s in stages if s in ceilings and ceilings[s].get("rate")]
    if len(rates) != len(stages):
        return None
    return 1.0 / sum(1.0 / float(r) for r in rates)


def cores_used(run: Mapping[str, Any]) -> dict[str, float]:
    """Average cores each role kept busy during ``run``: CPU seconds over the wall seconds of
    the window they were measured in (the drain, for a backlog)."""
    seconds = float(run.get("cpu_window_s") or run.get("seconds") or 0)
    cpu: Mapping[str, float] = run.get("cpu_seconds") or {}
    if seconds <= 0:
        return {}
    return {role: used / seconds for role, used in cpu.items()}


def bottleneck(results: Results, run: Mapping[str, Any]) -> str:
    """In words: what limited a backlog ``run``."""
    cores = cores_used(run)
    if not cores:
        return "not measured"
    side = slower_side(run)
    role = side or max(PIPELINE_ROLES, key=lambda r: cores.get(r, 0.0))
    parts = []
    if side == "processor":
        done = run["progress_done_s"]["produced"]
        parts.append(
            f"processor (connector done at {done:.1f} s, replica at {run['seconds']:.1f} s)"
        )
    elif side == "connector":
        parts.append("connector (the replica kept up with it)")
    parts.append(_cpu_diagnosis(results, run, cores, role))
    return "; ".join(parts)


def slower_side(run: Mapping[str, Any]) -> str | None:
    """``processor`` when the connector finished well before the replica, else ``connector``;
    None without the connector's progress."""
    produced = (run.get("progress_done_s") or {}).get("produced")
    if produced is None:
        return None
    return "processor" if produced < 0.8 * float(run["seconds"]) else "connector"


def _cpu_diagnosis(
    results: Results, run: Mapping[str, Any], cores: Mapping[str, float], role: str
) -> str:
    ours = {r: c for r, c in cores.items() if r != MACHINE and c >= 0.005}
    spread = ", ".join(f"{r} {c:.2f}" for r, c in sorted(ours.items(), key=lambda x: -x[1]))
    used = cores.get(role, 0.0)
    if used >= SATURATED:
        return f"{role} CPU-bound at {used:.2f} cores; " + _against_stages(results, run, role)
    machine = float(results["machine"].get("cores") or 1)
    busy = cores.get(MACHINE, sum(ours.values()))
    if busy >= 0.9 * machine:
        return f"machine CPU saturated: {busy:.2f} of {machine:.0f} cores busy (ours: {spread})"
    return f"no core saturated ({spread}): waits (polls, fetches, batch windows)"


def _against_stages(results: Results, run: Mapping[str, Any], role: str) -> str:
    """The rate a CPU-bound process reached, against what its measured stages allow."""
    ceilings = results["ceilings"]
    stage, value = _slowest(ceilings, CHAINS[role])
    serial = serial_estimate(ceilings, CHAINS[role]) or value
    reached = float(run.get("drain_rate") or run["rate"])
    text = f"{reached:,.0f}/s against {serial:,.0f}/s for its measured stages in series"
    if reached < 0.5 * serial:
        return text + ": most of its time goes outside them"
    return text + f" (slowest: {stage}, {value:,.0f}/s)"


def _slowest(ceilings: Mapping[str, Any], stages: tuple[str, ...]) -> tuple[str, float]:
    present = {s: float(ceilings[s]["rate"]) for s in stages if ceilings.get(s, {}).get("rate")}
    name = min(present, key=present.__getitem__)
    return ceilings[name]["stage"], present[name]


def latency_limit(step: Mapping[str, Any]) -> str:
    """Which side of the broker the p50 latency of a load is spent on."""
    total_p50, broker_p50 = step.get("p50"), (step.get("to_broker") or {}).get("p50")
    if total_p50 is None or broker_p50 is None:
        return "not measured"
    after = max(0.0, total_p50 - broker_p50)
    side = (
        "processor side (fetch, batch window, apply)"
        if after > broker_p50
        else ("connector and broker (poll, decode, encode, produce)")
    )
    return (
        f"the {side}: of the p50 ≈ {total_p50 * 1000:.0f} ms, {broker_p50 * 1000:.0f} ms pass "
        f"before a consumer can read the event and {after * 1000:.0f} ms after"
    )


def assess(results: Results) -> list[dict[str, Any]]:
    """One verdict per target and run: target, figure, met (None: not measured), limit."""
    verdicts = []
    low_name, low_rate = lowest_ceiling(results["ceilings"])
    low_label = results["ceilings"][low_name]["stage"]
    for name, run in results["end_to_end"].items():
        rate = float(run["rate"])
        verdicts.append(
            _verdict(
                f"≥ {E2E_RATE:,.0f} changes/s end to end ({name})",
                f"{rate:,.0f} changes/s ({rate / E2E_GOAL:.0%} of the {E2E_GOAL:,.0f} goal)",
                rate >= E2E_RATE,
                bottleneck(results, run),
            )
        )
        share = rate / low_rate
        verdicts.append(
            _verdict(
                f"≥ {CEILING_SHARE:.0%} of the lowest raw ceiling ({name})",
                f"{share:.0%} of {low_label} ({low_rate:,.0f}/s)",
                share >= CEILING_SHARE,
                bottleneck(results, run),
            )
        )
    verdicts.append(_latency_verdict(results))
    verdicts.append(_scaling_verdict(results))
    verdicts.append(_many_verdict(results))
    return verdicts


def _many_verdict(results: Results) -> dict[str, Any]:
    target = (
        f"85 subscribers on one worker: ≥ {MANY_RATE:,.0f} events/s in all, "
        f"under {MANY_RSS >> 30} GiB RSS"
    )
    many = results.get("subscribers", {}).get("85", {})
    rate, rss = many.get("aggregate_drain_rate"), many.get("worker_rss")
    if not rate or not rss:
        return _verdict(target, "not measured", None, "")
    figure = f"{rate:,.0f} events/s; {rss / 2**20:,.0f} MiB"
    limit = "memory" if rss >= MANY_RSS else "throughput"
    return _verdict(target, figure, rate >= MANY_RATE and rss < MANY_RSS, limit)


def _scaling_verdict(results: Results) -> dict[str, Any]:
    target = f"85 subscribers on one worker at ≤ {COST_RATIO:.0f} times the cost of 10"
    runs = results.get("subscribers", {})
    ten, many = runs.get("10", {}), runs.get("85", {})
    cpu_ten, cpu_many = ten.get("cpu_us_per_event"), many.get("cpu_us_per_event")
    if not cpu_ten or not cpu_many:
        return _verdict(target, "not measured", None, "")
    cpu = cpu_many / cpu_ten
    memory = many["worker_rss"] / 85 / (ten["worker_rss"] / 10)
    figure = f"CPU per event {cpu:.2f} times; memory per subscriber {memory:.2f} times"
    met = cpu <= COST_RATIO and memory <= COST_RATIO
    return _verdict(target, figure, met, "CPU per event" if cpu > COST_RATIO else "memory")


def _latency_verdict(results: Results) -> dict[str, Any]:
    target = f"p99 < {P99_SECONDS * 1000:.0f} ms at {P99_LOAD:,} changes/s"
    step = next((s for s in results.get("latency", []) if s["offered"] == P99_LOAD), None)
    if step is None or step.get("at_most_100ms") is None:
        return _verdict(target, "not measured", None, "")
    share = float(step["at_most_100ms"])
    p99 = step.get("p99")
    figure = f"p99 ≈ {p99 * 1000:.0f} ms; {share:.2%} of events ≤ 100 ms"
    return _verdict(target, figure, share >= 0.99, latency_limit(step))


def _verdict(target: str, figure: str, met: bool | None, limit: str) -> dict[str, Any]:
    return {"target": target, "figure": figure, "met": met, "limit": limit if met is False else ""}
