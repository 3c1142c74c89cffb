"""Options several commands share."""

from __future__ import annotations

from pathlib import Path

import click

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory holding stack.json (or the file itself).",
)
