"""``govsync status`` for people: one line per process, integers as integers, the problems of
what is not ok first on its line."""

from __future__ import annotations

import pytest

from sync.cli.status import _print, figure
from sync.stack.status import ProcessHealth


@pytest.mark.parametrize(
    ("value", "shown"),
    [(337.0, "337"), (1234567.0, "1,234,567"), (0.25, "0.2"), (12.75, "12.8"), ("-", "-")],
)
def test_figures_read_as_numbers(value: float | str, shown: str) -> None:
    assert figure(value) == shown


def test_one_line_per_process_with_the_problem_first(capsys: pytest.CaptureFixture[str]) -> None:
    _print(
        [
            ProcessHealth(
                "connector-population", "connector", 101, True, True, [], {"produced": 337.0}
            ),
            ProcessHealth(
                "processor-hanoi",
                "processor",
                202,
                True,
                True,
                ["subscription stopped (see its log)"],
                {"state": "stopped", "applied": 12345.0},
            ),
            ProcessHealth("registry", "registry", 303, False, False),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["ok", "connector-population", "pid", "101", "produced", "337"]
    assert lines[1].startswith("FAIL processor-hanoi")
    assert "subscription stopped (see its log); state stopped, applied 12,345" in lines[1]
    assert lines[2].startswith("FAIL registry") and lines[2].endswith("down")
