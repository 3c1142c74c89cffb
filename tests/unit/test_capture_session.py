"""The connector's sessions start with their own value-printing settings, after (so above)
whatever options the DSN or PGOPTIONS carry."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from connectors.postgres.session import capture_conninfo

OURS = "-c DateStyle=ISO -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3"


def options(dsn: str) -> str:
    return str(conninfo_to_dict(capture_conninfo(dsn))["options"])


def test_settings_are_startup_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGOPTIONS", raising=False)
    assert options("host=db dbname=population") == OURS
    assert conninfo_to_dict(capture_conninfo("host=db dbname=population"))["dbname"] == "population"


def test_options_of_the_dsn_are_kept_before_ours() -> None:
    dsn = "postgresql://u@db/population?options=-c%20search_path%3Dcitizens%20-c%20DateStyle%3DSQL"
    assert options(dsn) == f"-c search_path=citizens -c DateStyle=SQL {OURS}"


def test_pgoptions_are_kept_when_the_dsn_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")
    assert options("host=db") == f"-c statement_timeout=0 {OURS}"
