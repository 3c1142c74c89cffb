"""Benchmarks of govsync on the machine they run on: ``python -m bench [--quick]``.

Not part of the test suite. One run starts an embedded stack (PostgreSQL, the Tansu broker, the
registry), measures each stage alone, then the whole pipeline with the connector and processors
run as real processes, and writes a report with a plot to ``bench/results/``.
"""
