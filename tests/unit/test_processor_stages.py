"""The processor's stage benchmark (``python -m bench.processor_stages``): its report, from the
seconds each fresh process measured. No servers."""

from __future__ import annotations

import argparse

from bench.processor_stages import AGENCY_EVENTS, report


def test_processor_stages_report_per_event_and_per_message_ratios() -> None:
    """The processor's stage benchmark: CPU per event for decode and projection, per message
    (the first messages, for all N agencies) for the N agencies, old over new."""

    def run(seconds: float) -> dict[str, float]:
        stages = {"decode": seconds, "project": seconds / 2, "events": 10_000.0}
        stages |= {f"{n} agencies": seconds * n for n in (1, 10, 85)}
        return stages | {"agency events": float(AGENCY_EVENTS)}

    results = [("new", run(0.1)), ("old", run(0.3)), ("new", run(0.2)), ("old", run(0.3))]
    args = argparse.Namespace(repeat=2, events=10_000, per_txn=1_000)
    lines = report(results, args)
    decode = next(line for line in lines if line.strip().startswith("decode"))
    assert "new    15.00" in decode and "old    30.00" in decode and "2.00x" in decode
    many = next(line for line in lines if line.strip().startswith("85 agencies"))
    per_message = 0.15 * 85 / AGENCY_EVENTS * 1e6
    assert f"new {per_message:8.2f}" in many and "2.00x" in many
