"""Where a run's report goes: ``bench/results/<UTC timestamp>-<broker>.md`` with the plot and
the raw results beside it, and a copy of the report as ``latest.md``. When the directory holds
a run of the same mode on the other broker, the report puts the newest of each side by side."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.compare import broker_of, newest_by_broker
from bench.report import render

RESULTS_DIR = Path(__file__).parent / "results"


def write_results(
    results: Mapping[str, Any], started: datetime, directory: Path = RESULTS_DIR
) -> Path:
    """Write the report, its plot and the results as JSON; returns the report's path."""
    from bench.plot import write_plot  # matplotlib (the bench extra): only to draw the plot

    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{broker_of(results)}"
    plot = directory / f"{stem}.png"
    write_plot(results, plot)
    (directory / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    brokers = newest_by_broker(directory, results["mode"])
    brokers[broker_of(results)] = results  # this run, even if an older one sorts after it
    report = directory / f"{stem}.md"
    report.write_text(render(results, plot.name, brokers))
    shutil.copyfile(report, directory / "latest.md")
    return report
