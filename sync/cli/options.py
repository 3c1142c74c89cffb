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


def stack_description(data_dir: Path) -> StackDescription:
    """The deployment named by ``govsync --federation FILE``; without it, the embedded stack
    whose ``stack.json`` is in ``data_dir``."""
    context = click.get_current_context(silent=True)
    federation = context.find_root().params.get("federation") if context else None
    if federation:
        return describe_federation(Path(federation), os.environ)
    return StackDescription.read(data_dir)
