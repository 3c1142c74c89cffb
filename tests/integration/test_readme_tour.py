"""The README's five-minute tour, run command by command on ``govsync up``: the README stays
true. A command that reads what another wrote is retried until it shows it (a person would
look twice), with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.stack.ports import wait_until
from sync.stack.postgres import bin_dir
from tests.integration.test_up import abort, described, start_up, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

README = Path(__file__).parent.parent.parent / "README.md"


def tour() -> list[str]:
    """The commands of the tour's shell block, comments left out."""
    section = README.read_text(encoding="utf-8").split("## A five-minute tour", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_tour_runs_as_written(server_dir: Path) -> None:
    data_dir = server_dir / "tour"
    commands = [c.replace("DIR", str(data_dir)) for c in tour()]
    assert any(c.startswith("psql") for c in commands) and any("audit" in c for c in commands)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir())])
        + os.pathsep
        + os.environ.get("PATH", ""),
    }
    up = start_up(data_dir, citizens=50)
    outputs: dict[str, str] = {}
    try:
        described(data_dir)
        prelude = ""  # the variables the tour sets, for the commands after them
        for command in commands:
            if "=$(" in command:
                prelude += command + "\n"
                run(prelude, env)
            elif command.startswith('psql "$SRC"'):
                run(prelude + command, env)  # the change, committed once
            else:

                def shown(command: str = command, prelude: str = prelude) -> bool:
                    outputs[command] = run(prelude + command, env)
                    return expectation(command, outputs[command])

                wait_until(shown, 90, f"the tour's `{command}`")
        pids = [p.pid for p in described(data_dir).processes]
    except BaseException:
        abort(up)
        raise
    stop(up, pids)


def run(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {done.stdout}{done.stderr}")
    return done.stdout


def expectation(command: str, output: str) -> bool:
    """What each command of the tour must show."""
    if command.startswith('psql "$HANOI"'):
        return "001099000777" in output and "infinity" in output
    if "audit citizen" in command:
        return "hanoi" in output
    return True  # status, verify and audit verify: their exit code 0 is the proof
