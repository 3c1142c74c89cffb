"""The registry's administrative routes: deletes, config and mode, global and per subject, and
the 404 answers for the parts of Confluent's API this registry does not serve.

Config keeps the compatibility level only. The data-contract settings Confluent also keeps
there (default and override rule sets and metadata, aliases, compatibility groups, validation
switches) are refused with 42205 rather than ignored, so no client believes they apply.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sync.errors import RegistryError
from sync.registry.admin import Admin
from sync.registry.http_io import (
    actor_of,
    flag,
    optional_subject,
    read_json,
    reply,
    subject_of,
    version_of,
)
from sync.registry.model import Mode, not_permitted, parse_compatibility

# Confluent's API, as far as this registry leaves it out: contexts, schema exporters,
# client-side field encryption keys and data-contract metadata.
NOT_SERVED = {
    "/contexts": "contexts",
    "/contexts/{tail:.*}": "contexts",
    "/exporters": "schema exporters",
    "/exporters/{tail:.*}": "schema exporters",
    "/dek-registry/{tail:.*}": "encryption keys",
    "/subjects/{subject:[^/]+}/metadata": "data-contract metadata",
}
CONFIG_KEYS = ("compatibility", "compatibilityLevel")


class AdminRoutes:
    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def install(self, router: web.UrlDispatcher, subject: str) -> None:
        """Config and mode routes (deletes are installed beside the reads of their paths)."""
        for path in ("/config", f"/config/{subject}"):
            router.add_get(path, self.get_config)
            router.add_put(path, self.put_config)
            router.add_delete(path, self.delete_config)
        for path in ("/mode", f"/mode/{subject}"):
            router.add_get(path, self.get_mode)
            router.add_put(path, self.put_mode)
            router.add_delete(path, self.delete_mode)
        for path, feature in NOT_SERVED.items():
            router.add_route("*", path, _not_served(feature))

    async def delete_subject(self, request: web.Request) -> web.Response:
        permanent = flag(request, "permanent")
        subject, actor = subject_of(request), actor_of(request)
        return reply(await self.admin.delete_subject(subject, permanent=permanent, actor=actor))

    async def delete_version(self, request: web.Request) -> web.Response:
        subject, version = subject_of(request), version_of(request)
        permanent = flag(request, "permanent")
        deleted = await self.admin.delete_version(
            subject, version, permanent=permanent, actor=actor_of(request)
        )
        return reply(deleted)

    async def get_config(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        fallback = flag(request, "defaultToGlobal")
        level = await self.admin.compatibility(subject, default_to_global=fallback)
        return reply({"compatibilityLevel": level.value})

    async def put_config(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        body = await read_json(request)
        fields: dict[str, Any] = body if isinstance(body, dict) else {}
        unsupported = sorted(k for k, v in fields.items() if k not in CONFIG_KEYS and v is not None)
        if unsupported:
            raise not_permitted(
                f"Config {', '.join(unsupported)} is not supported by this registry; "
                "it keeps the compatibility level only"
            )
        level = parse_compatibility(fields.get("compatibility", fields.get("compatibilityLevel")))
        await self.admin.set_compatibility(subject, level, actor=actor_of(request))
        return reply({"compatibility": level.value})

    async def delete_config(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        old = await self.admin.delete_compatibility(subject, actor=actor_of(request))
        return reply({"compatibilityLevel": old.value})

    async def get_mode(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        mode = await self.admin.mode(subject, default_to_global=flag(request, "defaultToGlobal"))
        return reply({"mode": mode.value})

    async def put_mode(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        body = await read_json(request)
        mode = Mode.parse(body.get("mode") if isinstance(body, dict) else None)
        force = flag(request, "force")
        await self.admin.set_mode(subject, mode, force=force, actor=actor_of(request))
        return reply({"mode": mode.value})

    async def delete_mode(self, request: web.Request) -> web.Response:
        subject = optional_subject(request)
        old = await self.admin.delete_mode(subject, actor=actor_of(request))
        return reply({"mode": old.value})


def _not_served(feature: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise RegistryError(404, 404, f"HTTP 404 Not Found: this registry does not serve {feature}")

    return handler
