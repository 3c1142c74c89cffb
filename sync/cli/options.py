"""Options several commands share."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sync.stack.deployed import describe_federation
from sync.stack.description import StackDescription

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory holding stack.json (or the file itself).",
)


def _federation() -> Path | None:
    """The file ``govsync --federation FILE`` names, if any."""
    context = click.get_current_context(silent=True)
    federation = context.find_root().params.get("federation") if context else None
    return Path(federation) if federation else None


def stack_description(data_dir: Path) -> StackDescription:
    """The deployment named by ``govsync --federation FILE``; without it, the embedded stack
    whose ``stack.json`` is in ``data_dir``."""
    federation = _federation()
    if federation is not None:
        return describe_federation(federation, os.environ)
    return StackDescription.read(data_dir)


def described(data_dir: Path) -> bool:
    """Whether :func:`stack_description` has something to describe."""
    return _federation() is not None or data_dir.is_file() or (data_dir / "stack.json").exists()
