"""A local S3-compatible server for the broker's ``s3://`` storage: moto's server mode.

Tansu keeps topics, offsets and group state as objects in one bucket, so with this server
they survive a broker restart. moto keeps the objects in its own process memory: they last as
long as this server does, not across a stop of the whole stack. Tansu 0.6 on ``s3://`` can
still lose an idempotent batch that was in flight when it died (it answers the retry as a
duplicate without having stored it); see docs/operations.md (the embedded broker's limits).
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from sync.errors import StackError
from sync.stack.ports import LOOPBACK


def s3_server_installed() -> bool:
    return (
        importlib.util.find_spec("moto") is not None
        and importlib.util.find_spec("flask") is not None
    )


@dataclass(frozen=True)
class EmbeddedS3:
    port: int
    bucket: str = "tansu"

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def argv(self) -> list[str]:
        if not s3_server_installed():
            raise StackError(
                "s3 broker storage needs a local S3 server, moto[server]: pip install -e '.[s3]'"
            )
        return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]

    def client_env(self) -> dict[str, str]:
        """What Tansu's S3 client reads from its environment. moto accepts any credentials."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",  # plain HTTP on loopback
            "AWS_ACCESS_KEY_ID": "govsync",
            "AWS_SECRET_ACCESS_KEY": "govsync",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def create_bucket(self) -> bool:
        """Create the bucket (path-style PUT); true once it exists. Serves as the ready check."""
        request = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return 200 <= int(response.status) < 300
        except urllib.error.HTTPError as exc:
            return exc.code == 409  # BucketAlreadyOwnedByYou / BucketAlreadyExists
