"""Adapters to agency databases: change sources (capture) and replica sinks."""
