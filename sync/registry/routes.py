"""The registry's HTTP routes: Confluent Schema Registry's REST API, Avro only.

Handlers only translate between HTTP and :class:`~sync.registry.service.Registry` /
:class:`~sync.registry.admin.Admin`: they read path and query parameters, call one operation
and shape its result the way Confluent's clients expect. Failures are raised as
:class:`~sync.errors.RegistryError` and turned into JSON bodies by the app's one middleware.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sync.errors import RegistryError
from sync.registry.admin import Admin
from sync.registry.metrics import RegistryMetrics
from sync.registry.model import (
    AVRO,
    Lookup,
    Mode,
    SchemaInput,
    SubjectVersion,
    invalid_subject,
    parse_compatibility,
    parse_version,
    schema_not_found,
)
from sync.registry.service import Registry

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPTED_BODIES = frozenset(
    {CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json"}
)


def reply(data: Any, status: int = 200) -> web.Response:
    """A JSON response with Confluent's content type (no charset parameter, as Confluent)."""
    body = json.dumps(data, ensure_ascii=False).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": CONTENT_TYPE})


def raw(text: str) -> web.Response:
    """A schema as the body itself (the ``.../schema`` endpoints), with Confluent's type."""
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def read_json(request: web.Request) -> Any:
    """The JSON request body; 415 for a foreign content type, 400 for malformed JSON."""
    if "Content-Type" in request.headers and request.content_type not in ACCEPTED_BODIES:
        raise RegistryError(415, 415, "HTTP 415 Unsupported Media Type")
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise RegistryError(400, 400, f"Unparseable request body: {exc}") from None


def flag(request: web.Request, *names: str) -> bool:
    """A boolean query parameter; clients send ``true``, ``True`` or ``1``."""
    return any(request.query.get(n, "").lower() in {"true", "1"} for n in names)


def page(items: list[Any], request: web.Request) -> list[Any]:
    """Apply ``offset`` and ``limit`` (ignored when negative), as Confluent's list endpoints."""
    try:
        offset = max(int(request.query.get("offset", "0")), 0)
        limit = int(request.query.get("limit", "-1"))
    except ValueError:
        raise RegistryError(400, 400, "offset and limit must be integers") from None
    return items[offset : offset + limit] if limit >= 0 else items[offset:]


def subject_of(request: web.Request) -> str:
    subject = request.match_info["subject"]
    if not subject or any(ord(c) < 0x20 or ord(c) == 0x7F for c in subject):
        raise invalid_subject(subject)
    return subject


def version_of(request: web.Request) -> int:
    return parse_version(request.match_info["version"])


def schema_id_of(request: web.Request) -> int:
    text = request.match_info["id"]
    try:
        return int(text)
    except ValueError:
        raise schema_not_found(text) from None


class Routes:
    """Binds handlers to one registry, admin and metrics; :meth:`install` adds the routes."""

    def __init__(self, registry: Registry, admin: Admin, metrics: RegistryMetrics) -> None:
        self.registry = registry
        self.admin = admin
        self.metrics = metrics

    def install(self, router: web.UrlDispatcher) -> None:
        get, post, put, delete = router.add_get, router.add_post, router.add_put, router.add_delete
        get("/", self.root)
        get("/schemas/types", self.schema_types)
        get("/schemas/ids/{id}", self.schema_by_id)
        get("/schemas/ids/{id}/schema", self.raw_schema_by_id)
        get("/schemas/ids/{id}/versions", self.versions_of_id)
        get("/schemas/ids/{id}/subjects", self.subjects_of_id)
        get("/schemas/guids/{guid}", self.schema_by_guid)
        get("/subjects", self.subjects)
        post("/subjects/{subject}", self.lookup)
        delete("/subjects/{subject}", self.delete_subject)
        get("/subjects/{subject}/versions", self.versions)
        post("/subjects/{subject}/versions", self.register)
        get("/subjects/{subject}/versions/{version}", self.version)
        delete("/subjects/{subject}/versions/{version}", self.delete_version)
        get("/subjects/{subject}/versions/{version}/schema", self.raw_version)
        get("/subjects/{subject}/versions/{version}/referencedby", self.referenced_by)
        post("/compatibility/subjects/{subject}/versions", self.compatibility_all)
        post("/compatibility/subjects/{subject}/versions/{version}", self.compatibility)
        for path in ("/config", "/config/{subject}"):
            get(path, self.get_config)
            put(path, self.put_config)
            delete(path, self.delete_config)
        for path in ("/mode", "/mode/{subject}"):
            get(path, self.get_mode)
            put(path, self.put_mode)
            delete(path, self.delete_mode)

    async def root(self, request: web.Request) -> web.Response:
        return reply({})

    async def schema_types(self, request: web.Request) -> web.Response:
        return reply([AVRO])

    # -- schemas by id ------------------------------------------------------------------------

    async def schema_by_id(self, request: web.Request) -> web.Response:
        return reply((await self.registry.schema(schema_id_of(request))).to_json())

    async def raw_schema_by_id(self, request: web.Request) -> web.Response:
        schema = await self.registry.schema(schema_id_of(request))
        return raw(schema.schema)

    async def schema_by_guid(self, request: web.Request) -> web.Response:
        schema = await self.registry.schema_by_guid(request.match_info["guid"])
        return reply({"id": schema.id, "guid": schema.guid, **schema.to_json()})

    async def versions_of_id(self, request: web.Request) -> web.Response:
        pairs = await self._usages(request)
        return reply(page([{"subject": s, "version": v} for s, v in pairs], request))

    async def subjects_of_id(self, request: web.Request) -> web.Response:
        subjects = sorted({s for s, _ in await self._usages(request)})
        return reply(page(subjects, request))

    async def _usages(self, request: web.Request) -> list[tuple[str, int]]:
        pairs = await self.registry.usages(schema_id_of(request), deleted=flag(request, "deleted"))
        wanted = request.query.get("subject")
        return [(s, v) for s, v in pairs if wanted is None or s == wanted]

    # -- subjects and versions ----------------------------------------------------------------

    async def subjects(self, request: web.Request) -> web.Response:
        lookup = Lookup.of(flag(request, "deleted"), flag(request, "deleted_only", "deletedOnly"))
        prefix = request.query.get("subjectPrefix", "")
        return reply(page(await self.registry.subjects(prefix, lookup), request))

    async def versions(self, request: web.Request) -> web.Response:
        lookup = Lookup.of(flag(request, "deleted"), flag(request, "deleted_only", "deletedOnly"))
        return reply(page(await self.registry.versions(subject_of(request), lookup), request))

    async def version(self, request: web.Request) -> web.Response:
        return reply((await self._version(request)).to_json())

    async def raw_version(self, request: web.Request) -> web.Response:
        return raw((await self._version(request)).schema.schema)

    async def _version(self, request: web.Request) -> SubjectVersion:
        subject, version = subject_of(request), version_of(request)
        return await self.registry.version(subject, version, deleted=flag(request, "deleted"))

    async def referenced_by(self, request: web.Request) -> web.Response:
        ids = await self.registry.referenced_by(subject_of(request), version_of(request))
        return reply(page(ids, request))

    async def register(self, request: web.Request) -> web.Response:
        subject = subject_of(request)
        body = SchemaInput.from_json(await read_json(request))
        try:
            result = await self.registry.register(subject, body)
        except RegistryError as exc:
            if exc.http_status == 409:
                self.metrics.compatibility_rejections.inc()
            raise
        if result.created:
            self.metrics.registrations.inc()
        return reply(result.version.to_json())

    async def lookup(self, request: web.Request) -> web.Response:
        subject = subject_of(request)
        body = SchemaInput.from_json(await read_json(request))
        found = await self.registry.lookup(subject, body, deleted=flag(request, "deleted"))
        return reply(found.to_json())

    async def delete_subject(self, request: web.Request) -> web.Response:
        permanent = flag(request, "permanent")
        return reply(await self.admin.delete_subject(subject_of(request), permanent=permanent))

    async def delete_version(self, request: web.Request) -> web.Response:
        subject, version = subject_of(request), version_of(request)
        permanent = flag(request, "permanent")
        return reply(await self.admin.delete_version(subject, version, permanent=permanent))

    # -- compatibility ------------------------------------------------------------------------

    async def compatibility(self, request: web.Request) -> web.Response:
        return await self._compatibility(request, version_of(request))

    async def compatibility_all(self, request: web.Request) -> web.Response:
        return await self._compatibility(request, None)

    async def _compatibility(self, request: web.Request, version: int | None) -> web.Response:
        subject = subject_of(request)
        body = SchemaInput.from_json(await read_json(request))
        messages = await self.registry.test_compatibility(subject, version, body)
        out: dict[str, Any] = {"is_compatible": not messages}
        if flag(request, "verbose"):
            out["messages"] = messages
        return reply(out)

    # -- config and mode ----------------------------------------------------------------------

    async def get_config(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        fallback = flag(request, "defaultToGlobal")
        level = await self.admin.compatibility(subject, default_to_global=fallback)
        return reply({"compatibilityLevel": level.value})

    async def put_config(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        raw = body.get("compatibility") if isinstance(body, dict) else None
        level = parse_compatibility(raw)
        await self.admin.set_compatibility(request.match_info.get("subject"), level)
        return reply({"compatibility": level.value})

    async def delete_config(self, request: web.Request) -> web.Response:
        old = await self.admin.delete_compatibility(request.match_info.get("subject"))
        return reply({"compatibilityLevel": old.value})

    async def get_mode(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        mode = await self.admin.mode(subject, default_to_global=flag(request, "defaultToGlobal"))
        return reply({"mode": mode.value})

    async def put_mode(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        mode = Mode.parse(body.get("mode") if isinstance(body, dict) else None)
        subject = request.match_info.get("subject")
        await self.admin.set_mode(subject, mode, force=flag(request, "force"))
        return reply({"mode": mode.value})

    async def delete_mode(self, request: web.Request) -> web.Response:
        old = await self.admin.delete_mode(request.match_info.get("subject"))
        return reply({"mode": old.value})
