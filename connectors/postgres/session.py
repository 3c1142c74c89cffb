"""The session settings a source's values are read under.

pgoutput prints each column with its type's output function under the settings of the session
that decodes, and the snapshot (with the unchanged-TOAST lookups on its connection) reads rows in
a session of its own. Both must print values exactly as :mod:`connectors.postgres.values` and
psycopg's loaders read them, whatever an agency set as its database's or role's defaults
(``ALTER DATABASE ... SET DateStyle = 'SQL, DMY'``, ``bytea_output = 'escape'``).

The settings go in the connection's startup options rather than in a ``SET`` after connecting:
startup options outrank database and role defaults, and every connection made from the
conninfo, a reconnect included, starts with them.
"""

from __future__ import annotations

import os
from typing import Final

from psycopg.conninfo import conninfo_to_dict, make_conninfo

SETTINGS: Final = {
    "DateStyle": "ISO",  # 2024-02-29 and 2024-02-29 10:00:00+07, not 29/02/2024 or Thu Feb 29
    "IntervalStyle": "postgres",  # the only style psycopg reads intervals in
    "bytea_output": "hex",
    "extra_float_digits": "3",  # floats printed exactly (0 or less rounds them)
}


def capture_conninfo(dsn: str) -> str:
    """``dsn`` with :data:`SETTINGS` as startup options, after the options it already has (or
    ``PGOPTIONS``, which an explicit ``options`` would otherwise replace), so that ours win."""
    ours = " ".join(f"-c {name}={value}" for name, value in SETTINGS.items())
    theirs = conninfo_to_dict(dsn).get("options") or os.environ.get("PGOPTIONS", "")
    return make_conninfo(dsn, options=f"{theirs} {ours}".strip())
