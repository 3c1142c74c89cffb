"""``python -m sync.registry --dsn DSN --host 127.0.0.1 --port 8081``: run the registry.

A thin command line for running the registry on its own (and for supervisors); the project's
CLI calls :func:`sync.registry.serve` directly. Limits and parser workers come from the
``GOVSYNC_REGISTRY_*`` environment variables of :class:`~sync.config.RegistrySettings`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sync.config import RegistrySettings
from sync.errors import GovsyncError
from sync.registry.server import serve

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sync.registry",
        description="A Confluent-compatible Avro schema registry stored in PostgreSQL.",
    )
    parser.add_argument("--dsn", required=True, help="PostgreSQL connection string")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(RegistrySettings(registry_dsn=args.dsn, host=args.host, port=args.port))
    except (GovsyncError, OSError) as exc:  # the database is unreachable, the port is taken
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        log.error("the schema registry cannot run: %s%s", exc, cause)
        sys.exit(1)


if __name__ == "__main__":
    main()
