"""The measurement sections of the report, one function each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.markdown import DASH, mebibytes, millis, per_second, seconds, share, table
from bench.targets import CHAINS, MACHINE, cores_used, lowest_ceiling, serial_estimate

Results = Mapping[str, Any]

MEMORY_ROLES = ("connector", "processor", "broker", "postgres", "registry")


def ceilings_section(results: Results) -> list[str]:
    ceilings = results["ceilings"]
    rows = [
        [f["stage"], f["process"], f"{f['items']:,} {f['unit']}", seconds(f["seconds"], 2)]
        for f in ceilings.values()
    ]
    for row, f in zip(rows, ceilings.values(), strict=True):
        row.append(f"{per_second(f['rate'])} {f['unit']}/s")
    lines = table(("stage", "runs in", "work", "seconds", "rate"), rows)
    name, rate = lowest_ceiling(ceilings)
    lines += [f"Lowest raw ceiling: {ceilings[name]['stage']}, {per_second(rate)}/s.", ""]
    chain_rows = [
        (process, " → ".join(stages), per_second(serial_estimate(ceilings, stages)))
        for process, stages in CHAINS.items()
    ]
    lines += [
        "A pipeline process runs its stages one after the other in one Python thread, so its "
        "own ceiling is about the serial combination of theirs (1 / Σ 1/rate):",
        "",
    ]
    lines += table(("process", "stages", "serial estimate, changes/s"), chain_rows)
    lines += _ceiling_notes(ceilings)
    return lines


def _ceiling_notes(ceilings: Mapping[str, Any]) -> list[str]:
    notes = []
    if "pgoutput_read" in ceilings:
        notes.append(f"pgoutput messages read: {ceilings['pgoutput_read'].get('messages', 0):,}")
    if "avro_encode" in ceilings:
        notes.append(f"mean encoded value: {ceilings['avro_encode'].get('mean_value_bytes')} bytes")
    if "produce" in ceilings:
        notes.append(f"raw produce: 300-byte values, {ceilings['produce'].get('mb_per_s')} MB/s")
    return [f"- {note}" for note in notes] + [""] if notes else []


def end_to_end_section(results: Results) -> list[str]:
    runs = results["end_to_end"]
    _, low = lowest_ceiling(results["ceilings"])
    rows = [_backlog_row(name, run, low) for name, run in runs.items()]
    header = ("run", "changes", "load s", "first row s", "all produced s", "converged s")
    lines = table((*header, "changes/s", "drain changes/s", "of lowest ceiling"), rows)
    lines += [
        "Timed from the connector's start (the processor already runs and holds its "
        "partitions) until `count(*)` of the replica equals the backlog; *drain* counts from "
        "the first replica row; *all produced* is when the connector's "
        "`govsync_connector_events_produced_total` reached the backlog. *snapshot*: the rows "
        "were in the table before the slot existed. *streaming*: they were committed in "
        "transactions of 1,000 changes after it, and flow through the slot.",
        "",
        *_workload_lines(runs.get("streaming", {}).get("workload")),
        "Cores each process kept busy during the drain (CPU seconds over wall seconds):",
        "",
    ]
    return lines + _cores_table(runs)


def _workload_lines(workload: Mapping[str, Any] | None) -> list[str]:
    if not workload:
        return []
    kinds = ", ".join(
        f"{workload[kind]:,} {kind.replace('_', ' ')}"
        for kind in ("inserts", "updates", "key_changes", "deletes")
    )
    return [
        f"The streamed changes: {kinds} ({workload['events']:,} events: a key change is a "
        f"delete and a create), leaving {workload['rows']:,} rows; the first transaction "
        "inserts only, each later one also updates, re-keys and deletes rows the one before "
        "inserted. Converged is when `count(*)` reached those rows, which only the last "
        "transaction completes.",
        "",
    ]


def _backlog_row(name: str, run: Mapping[str, Any], lowest: float) -> list[str]:
    return [
        name,
        f"{run.get('changes', run['rows']):,}",
        seconds(run.get("load_seconds")),
        seconds(run["first_row_s"]),
        seconds((run.get("progress_done_s") or {}).get("produced")),
        seconds(run["seconds"]),
        per_second(run["rate"]),
        per_second(run.get("drain_rate")),
        share(run["rate"] / lowest),
    ]


def _cores_table(runs: Mapping[str, Any]) -> list[str]:
    used = {name: cores_used(run) for name, run in runs.items()}
    roles = sorted({role for cores in used.values() for role in cores} - {MACHINE})
    rows = [(role, *(f"{used[name].get(role, 0.0):.2f}" for name in runs)) for role in roles]
    everything = "all processes on the machine, ours or not"
    rows.append((everything, *(f"{used[name].get(MACHINE, 0.0):.2f}" for name in runs)))
    return table(("process", *runs), rows)


def latency_section(results: Results) -> list[str]:
    steps = results.get("latency", [])
    rows = [_latency_row(step) for step in steps]
    header = ("offered/s", "achieved/s", "rows/txn", "events", "p50", "p95", "p99", "≤ 100 ms")
    return [
        *table((*header, "≤ 500 ms", "to broker p50", "to broker p99"), rows),
        "From the processor's `govsync_processor_end_to_end_latency_seconds` histogram, "
        "scraped before and after each load (source commit to replica commit). Percentiles "
        "are interpolated inside buckets (…, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 s); the ≤ 100 "
        "and ≤ 500 ms shares are exact. *To broker*: from the source commit until a probe "
        "consumer with a 10 ms fetch wait, started at the topic's end, could read the event "
        "(connector and broker); the rest is the processor side.",
        "",
    ]


def _latency_row(step: Mapping[str, Any]) -> list[str]:
    return [
        per_second(step["offered"]),
        per_second(step["achieved"]),
        str(step["rows_per_txn"]),
        f"{step['observed']:,}",
        *(millis(step.get(p)) for p in ("p50", "p95", "p99")),
        share(step.get("at_most_100ms"), 2),
        share(step.get("at_most_500ms"), 2),
        *(millis((step.get("to_broker") or {}).get(p)) for p in ("p50", "p99")),
    ]


def baseline_section(results: Results) -> list[str]:
    naive = results.get("baseline")
    solo = results.get("solo")
    if not naive or not solo:
        return ["Not measured.", ""]
    naive_label = "naive: poll, decode, one upsert and one commit per event"
    drain_seconds = solo["seconds"] - solo["first_row_s"]
    rows = [
        [naive_label, f"{naive['items']:,}", seconds(naive["seconds"]), per_second(naive["rate"])],
        ["govsync processor, 1 subscriber", f"{solo['rows']:,}", seconds(drain_seconds)],
    ]
    rows[1].append(per_second(solo.get("drain_rate")))
    text = "Both read the snapshot run's topic from offset 0 into an empty replica table."
    if naive.get("time_boxed"):
        text += " The naive consumer stopped at its time limit."
    if naive.get("rate") and solo.get("drain_rate"):
        text += f" The processor applies {solo['drain_rate'] / naive['rate']:,.1f} times as many"
        text += " events per second (its time counts from its first replica row)."
    return [*table(("consumer", "events", "seconds", "events/s"), rows), text, ""]


def subscribers_section(results: Results) -> list[str]:
    runs = results.get("subscribers", {})
    rows = []
    for name, run in runs.items():
        cores = cores_used(run)
        rows.append([name, seconds(run["seconds"]), per_second(run.get("drain_rate"))])
        rows[-1] += [per_second(run.get("aggregate_drain_rate"))]
        rows[-1] += [f"{cores.get(role, 0.0):.2f}" for role in ("processor", "postgres")]
        cost = run.get("cpu_us_per_event")
        rows[-1] += [f"{cost:,.0f}" if cost else DASH, mebibytes(run.get("worker_rss", 0))]
    header = (
        "subscribers",
        "converged s",
        "drain events/s each",
        "drain events/s total",
        "processor cores",
        "postgres cores",
        "worker CPU µs per event",
        "worker RSS MiB",
    )
    return [
        *table(header, rows),
        "The subscribers of a run are hosted by one worker process (or shared by two: each "
        "agency's partitions split between them by its consumer group), each agency with its "
        "own consumer group and replica database, draining the snapshot run's topic from "
        f"offset 0 until every replica holds {results['sizes'].get('scaled', 0):,} events. "
        "*drain* counts from the first replica row; cores are those of the drain. Worker CPU "
        "per event is the processes' CPU time over the events applied to all replicas; RSS is "
        "the largest worker's at the end.",
        "",
    ]


def _broker_memory_note(results: Results) -> str:
    if results.get("broker") == "kafka":
        return "The broker is the three Kafka nodes together, their topics on disk."
    return "The broker (Tansu) keeps every topic of the run in memory."


def memory_section(results: Results) -> list[str]:
    memory = results.get("memory", {})
    rows = [
        (role, mebibytes(memory[role]["rss"]), mebibytes(memory[role]["pss"]))
        for role in MEMORY_ROLES
        if role in memory
    ]
    return [
        *table(("process", "peak RSS MiB", "peak PSS MiB"), rows),
        "Sampled every 0.5 s over the whole run. postgres is the postmaster and its backends "
        "together: their RSS counts shared buffers once per backend, PSS splits them. For the "
        "connector and processor, the highest of any one process. " + _broker_memory_note(results),
        "",
    ]
