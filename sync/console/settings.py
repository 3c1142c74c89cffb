"""The console's settings, from ``GOVSYNC_*`` variables like every process's: its listener,
its users file, the registry it reads (URL and credentials, as every registry client's), the
audit's reader DSN and the federation manifest that says who receives what."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sync.config import KafkaSettings


class ConsoleSettings(KafkaSettings):
    bootstrap: str = Field(default="", description="Not needed by the console")
    host: str = "127.0.0.1"
    port: int = 8082
    console_users: Path = Field(
        description="Users file: name:hash:role lines (`govsync console user` makes one)"
    )
    audit_dsn: str = Field(
        default="",
        description="The audit's reader role (libpq); empty: the disclosures page says so",
    )
    manifest: Path | None = Field(
        default=None, description="Federation manifest: who receives each changed field"
    )
