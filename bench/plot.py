"""The report's figure: rates against the target, convergence over time, latency percentiles
and peak memory, in one PNG."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.report_sections import MEMORY_ROLES
from bench.targets import E2E_RATE, P99_SECONDS

Results = Mapping[str, Any]


def write_plot(results: Results, path: Path) -> None:
    figure = Figure(figsize=(14, 9))  # no pyplot: no display, no global state
    axes = figure.subplots(2, 2)
    _rates(axes[0][0], results)
    _convergence(axes[0][1], results)
    _latency(axes[1][0], results)
    _memory(axes[1][1], results)
    figure.suptitle(f"govsync benchmark, {results['started']} ({results['mode']} mode)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _rates(ax: Axes, results: Results) -> None:
    labels, values, colours = [], [], []
    for name, figure in results["ceilings"].items():
        labels.append(f"ceiling: {name}")
        values.append(figure["rate"] or 0)
        colours.append("tab:grey")
    for name, run in results["end_to_end"].items():
        labels.append(f"end to end: {name}")
        values.append(run["rate"])
        colours.append("tab:blue")
    if results.get("baseline"):
        labels.append("naive baseline")
        values.append(results["baseline"]["rate"] or 0)
        colours.append("tab:red")
    ax.barh(labels, values, color=colours)
    ax.axvline(E2E_RATE, color="tab:green", linestyle="--", label=f"target {E2E_RATE:,.0f}/s")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("rows or events per second (log)")
    ax.set_title("Raw ceilings and end-to-end rates")
    ax.legend(loc="lower right")


def _convergence(ax: Axes, results: Results) -> None:
    runs = {f"{name} (1 subscriber)": run for name, run in results["end_to_end"].items()}
    if results.get("solo"):
        runs["drain, 1 subscriber"] = results["solo"]
    for label, run in runs.items():
        for replica, series in run["series"].items():
            line = ax.plot(*_unzip(series), label=f"{label}: {replica}")[0]
        produced = run.get("progress", {}).get("produced")
        if produced:
            ax.plot(*_unzip(produced), ":", color=line.get_color(), label=f"{label}: produced")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("replica rows")
    ax.set_title("Replica rows while a backlog converges")
    ax.legend(fontsize="small")


def _unzip(series: list[list[float]]) -> tuple[list[float], list[float]]:
    return [point[0] for point in series], [point[1] for point in series]


def _latency(ax: Axes, results: Results) -> None:
    steps = results.get("latency", [])
    loads = [str(step["offered"]) for step in steps]
    width = 0.2
    bars = {name: [(s.get(name) or 0) * 1000 for s in steps] for name in ("p50", "p95", "p99")}
    bars["p50 to broker"] = [(s.get("to_broker") or {}).get("p50", 0) * 1000 for s in steps]
    for i, (name, values) in enumerate(bars.items()):
        positions = [x + (i - 1.5) * width for x in range(len(steps))]
        ax.bar(positions, values, width, label=name)
    ax.axhline(P99_SECONDS * 1000, color="tab:red", linestyle="--", label="p99 target")
    ax.set_xticks(range(len(steps)), loads)
    ax.set_xlabel("offered load, changes per second")
    ax.set_ylabel("milliseconds, source commit to replica commit")
    ax.set_title("End-to-end latency")
    ax.legend()


def _memory(ax: Axes, results: Results) -> None:
    memory = results.get("memory", {})
    roles = [role for role in MEMORY_ROLES if role in memory]
    rss = [memory[r]["rss"] / 2**20 for r in roles]
    pss = [memory[r]["pss"] / 2**20 for r in roles]
    positions = range(len(roles))
    ax.bar([p - 0.2 for p in positions], rss, 0.4, label="peak RSS")
    ax.bar([p + 0.2 for p in positions], pss, 0.4, label="peak PSS")
    ax.set_xticks(list(positions), roles)
    ax.set_ylabel("MiB")
    ax.set_title("Peak memory per process")
    ax.legend()
