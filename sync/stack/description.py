"""``stack.json``: where a running federation's parts are, for scripts and other tools.

Written atomically (temporary file, then rename) whenever the stack is ready or a process is
restarted, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sync.errors import ConfigError

FILE_NAME = "stack.json"


@dataclass
class DatabaseEntry:
    agency: str
    role: str  # "source", "replica", "registry" or "audit"
    dsn: str
    dbname: str


@dataclass
class ProcessEntry:
    name: str
    role: str
    pid: int
    metrics_url: str | None = None
    log: str | None = None
    restarts: int = 0


@dataclass
class StackDescription:
    data_dir: str
    bootstrap: str
    registry_url: str
    postgres_port: int
    databases: list[DatabaseEntry] = field(default_factory=list)
    processes: list[ProcessEntry] = field(default_factory=list)
    broker_storage: str = "memory://tansu/"
    broker: str = "tansu"  # or "kafka": the three-node Apache Kafka cluster
    manifest: str | None = None  # the federation manifest the processors apply
    hash_keys_file: str | None = None  # secrets of its keyed hashes (verify needs them)
    console_url: str | None = None  # the web console, when the stack runs one
    version: int = 1

    def database(self, agency: str, role: str) -> DatabaseEntry:
        for entry in self.databases:
            if entry.agency == agency and entry.role == role:
                return entry
        raise ConfigError(f"stack.json has no {role} database for agency {agency!r}")

    def process(self, name: str) -> ProcessEntry:
        for entry in self.processes:
            if entry.name == name:
                return entry
        raise ConfigError(f"stack.json has no process named {name!r}")

    def write(self, data_dir: Path) -> Path:
        path = data_dir / FILE_NAME
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path

    @classmethod
    def read(cls, path: Path | str) -> StackDescription:
        """The description in ``path``: stack.json itself or the directory holding it."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE_NAME
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            raw["databases"] = [DatabaseEntry(**d) for d in raw.get("databases", [])]
            raw["processes"] = [ProcessEntry(**p) for p in raw.get("processes", [])]
            return cls(**raw)
        except (OSError, json.JSONDecodeError, AttributeError, TypeError) as exc:
            raise ConfigError(f"cannot read the stack description {path}: {exc}") from exc
