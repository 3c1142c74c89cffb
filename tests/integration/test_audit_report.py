"""``govsync audit report`` on a real PostgreSQL: disclosures per agency, purpose and legal
basis over a period, the people they were about, and the sensitive fields among them."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from sync.stack.providers import StackProvider
from tests.integration.test_audit import PURPOSE, cli, disclosure, record

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]


def test_report_counts_disclosures_and_names_sensitive_fields(stack: StackProvider) -> None:
    dsn = stack.create_database(f"audit_report_{uuid.uuid4().hex[:10]}")
    with_ethnicity = ("personal_id", "full_name", "ethnicity")
    record(
        dsn,
        "gso",
        [
            disclosure("gso", 1, ["001090000001"], fields=with_ethnicity),
            disclosure("gso", 2, ["001090000002"]),
            disclosure("gso", 3, ["001090000001"]),
        ],
    )
    record(dsn, "vss", [disclosure("vss", 1, ["001090000003"])])

    done = cli(dsn, "report", "--since", "2020-01-01", "--csv")
    assert done.returncode == 0, done.stderr
    rows = {r["agency"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert rows["gso"]["purpose"] == PURPOSE["gso"]
    assert (rows["gso"]["disclosures"], rows["gso"]["people"]) == ("3", "2")
    assert rows["gso"]["sensitive_fields"] == "population.citizen.ethnicity"
    assert (rows["vss"]["disclosures"], rows["vss"]["sensitive_fields"]) == ("1", "")
    assert "001090000001" not in done.stdout  # the report names no one

    table = cli(dsn, "report", "--since", "2020-01-01")
    assert table.returncode == 0 and "population.citizen.ethnicity" in table.stdout
    later = cli(dsn, "report", "--since", "2999-01-01", "--until", "2999-02-01")
    assert "no disclosure recorded from 2999-01-01 to 2999-01-31" in later.stdout
