"""What ``govsync verify --pushgateway`` pushes: drift per agency and table, and when the run
ended and last compared everything; a failed run must not wipe the last results."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client import CollectorRegistry

from sync.replica.verify import TableReport
from sync.stack.verification import ReplicaReport
from sync.stack.verify_metrics import push_outcome, verify_registry

ENDED = 1_767_225_600.0


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def exported_names(registry: CollectorRegistry) -> set[str]:
    return {s.name for family in registry.collect() for s in family.samples}


REPORTS = [
    ReplicaReport(
        "hanoi",
        [
            TableReport("population.citizen", 10, 9, missing=[("1",)], different=[("2",), ("3",)]),
            TableReport("population.household", 4, 5, extra=[("7",)]),
            TableReport("business.enterprise", 3, 3),
        ],
    ),
    ReplicaReport("gdt", [TableReport("business.enterprise", 3, 3)]),
]


def test_a_compared_run_exports_drift_per_agency_and_table() -> None:
    registry, compared = verify_registry(REPORTS, ENDED)
    assert compared
    assert sample(registry, "govsync_verify_tables_unequal", agency="hanoi") == 2
    assert sample(registry, "govsync_verify_tables_unequal", agency="gdt") == 0
    citizen = {"agency": "hanoi", "topic": "population.citizen"}
    assert sample(registry, "govsync_verify_rows_differing", **citizen) == 3
    household = {"agency": "hanoi", "topic": "population.household"}
    assert sample(registry, "govsync_verify_rows_differing", **household) == 1
    equal = {"agency": "gdt", "topic": "business.enterprise"}
    assert sample(registry, "govsync_verify_rows_differing", **equal) == 0
    assert sample(registry, "govsync_verify_last_run_timestamp_seconds") == ENDED
    assert sample(registry, "govsync_verify_last_success_timestamp_seconds") == ENDED


@pytest.mark.parametrize("reports", [None, []], ids=["failed", "no replica"])
def test_a_run_that_compared_nothing_exports_only_its_end(
    reports: list[ReplicaReport] | None,
) -> None:
    registry, compared = verify_registry(reports, ENDED)
    assert not compared
    assert exported_names(registry) == {"govsync_verify_last_run_timestamp_seconds"}


class _Gateway(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, bytes]] = []

    def _store(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _store

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    _Gateway.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_compared_run_replaces_its_group_a_failed_one_only_adds(gateway: str) -> None:
    push_outcome(gateway, REPORTS, ENDED)
    push_outcome(gateway, None, ENDED + 60, agency="hanoi")
    (put, put_path, put_body), (post, post_path, post_body) = _Gateway.requests
    assert (put, put_path) == ("PUT", "/metrics/job/govsync-verify/scope/all")
    assert b'govsync_verify_tables_unequal{agency="hanoi"} 2.0' in put_body
    assert (post, post_path) == ("POST", "/metrics/job/govsync-verify/scope/hanoi")
    assert b"govsync_verify_last_run_timestamp_seconds" in post_body
    assert b"last_success" not in post_body and b"tables_unequal" not in post_body
