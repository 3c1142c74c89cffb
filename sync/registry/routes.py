"""The registry's HTTP routes: Confluent Schema Registry's REST API, Avro only.

Handlers only translate between HTTP and the registry's operations (:class:`Registry`,
:class:`Reads`, :class:`Admin`): they read path and query parameters, call one operation and
shape its result the way Confluent's clients expect. Failures are raised as
:class:`~sync.errors.RegistryError` and turned into JSON bodies by the app's one middleware.

A subject may hold any character, ``{``, ``}`` and an encoded ``/`` included: the subject
parameter matches one path segment as the client encoded it (aiohttp keeps ``%2F`` encoded
while routing), so ``/versions`` is never taken into the subject.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sync.errors import RegistryError
from sync.registry.admin import Admin
from sync.registry.http_io import (
    actor_of,
    flag,
    page,
    paging,
    raw,
    read_schema,
    reply,
    schema_id_of,
    subject_filter,
    subject_of,
    version_of,
)
from sync.registry.metrics import RegistryMetrics
from sync.registry.model import AVRO, Lookup, SubjectVersion
from sync.registry.parser_pool import ParserPool
from sync.registry.reads import Reads
from sync.registry.routes_admin import AdminRoutes
from sync.registry.service import Registry
from sync.registry.store import PgStore

SUBJECT = "{subject:[^/]+}"
SCHEMAS_PAGE = 1_000  # GET /schemas: Confluent's default and largest page (schema.search.*)


class Routes:
    """Binds handlers to one store, parser and metrics; :meth:`install` adds the routes."""

    def __init__(self, store: PgStore, parser: ParserPool, metrics: RegistryMetrics) -> None:
        self.registry = Registry(store, parser)
        self.reads = Reads(store)
        self.admin = AdminRoutes(Admin(store))
        self.parser = parser
        self.metrics = metrics

    def install(self, router: web.UrlDispatcher) -> None:
        get, post, delete = router.add_get, router.add_post, router.add_delete
        get("/", self.root)
        get("/schemas", self.schemas)
        get("/schemas/types", self.schema_types)
        get("/schemas/ids/{id}", self.schema_by_id)
        get("/schemas/ids/{id}/schema", self.raw_schema_by_id)
        get("/schemas/ids/{id}/versions", self.versions_of_id)
        get("/schemas/ids/{id}/subjects", self.subjects_of_id)
        get("/schemas/guids/{guid}", self.schema_by_guid)
        get("/subjects", self.subjects)
        post(f"/subjects/{SUBJECT}", self.lookup)
        delete(f"/subjects/{SUBJECT}", self.admin.delete_subject)
        get(f"/subjects/{SUBJECT}/versions", self.versions)
        post(f"/subjects/{SUBJECT}/versions", self.register)
        get(f"/subjects/{SUBJECT}/versions/{{version}}", self.version)
        delete(f"/subjects/{SUBJECT}/versions/{{version}}", self.admin.delete_version)
        get(f"/subjects/{SUBJECT}/versions/{{version}}/schema", self.raw_version)
        get(f"/subjects/{SUBJECT}/versions/{{version}}/referencedby", self.referenced_by)
        post(f"/compatibility/subjects/{SUBJECT}/versions", self.compatibility_all)
        post(f"/compatibility/subjects/{SUBJECT}/versions/{{version}}", self.compatibility)
        self.admin.install(router, SUBJECT)

    async def root(self, request: web.Request) -> web.Response:
        return reply({})

    async def schema_types(self, request: web.Request) -> web.Response:
        return reply([AVRO])

    # -- schemas ------------------------------------------------------------------------------

    async def schemas(self, request: web.Request) -> web.Response:
        offset, limit = paging(request)
        found = await self.reads.schema_versions(
            request.query.get("subjectPrefix", ""),
            Lookup.of(flag(request, "deleted")),
            latest_only=flag(request, "latestOnly"),
            offset=offset,
            limit=limit if 0 < limit <= SCHEMAS_PAGE else SCHEMAS_PAGE,
        )
        return reply([v.to_json() for v in found])

    async def schema_by_id(self, request: web.Request) -> web.Response:
        schema_id = schema_id_of(request)
        subject_filter(request)  # validated; with a single context it selects nothing more
        out = (await self.reads.schema(schema_id)).to_json()
        if flag(request, "fetchMaxId"):
            out["maxId"] = await self.reads.max_schema_id()
        return reply(out)

    async def raw_schema_by_id(self, request: web.Request) -> web.Response:
        schema_id = schema_id_of(request)
        subject_filter(request)
        return raw((await self.reads.schema(schema_id)).schema)

    async def schema_by_guid(self, request: web.Request) -> web.Response:
        schema = await self.reads.schema_by_guid(request.match_info["guid"])
        return reply({"id": schema.id, "guid": schema.guid, **schema.to_json()})

    async def versions_of_id(self, request: web.Request) -> web.Response:
        pairs = await self._usages(request)
        return reply(page([{"subject": s, "version": v} for s, v in pairs], request))

    async def subjects_of_id(self, request: web.Request) -> web.Response:
        subjects = sorted({s for s, _ in await self._usages(request)})
        return reply(page(subjects, request))

    async def _usages(self, request: web.Request) -> list[tuple[str, int]]:
        schema_id, wanted = schema_id_of(request), subject_filter(request)
        pairs = await self.reads.usages(schema_id, deleted=flag(request, "deleted"))
        return [(s, v) for s, v in pairs if wanted is None or s == wanted]

    # -- subjects and versions ----------------------------------------------------------------

    async def subjects(self, request: web.Request) -> web.Response:
        lookup = Lookup.of(flag(request, "deleted"), flag(request, "deleted_only", "deletedOnly"))
        prefix = request.query.get("subjectPrefix", "")
        return reply(page(await self.reads.subjects(prefix, lookup), request))

    async def versions(self, request: web.Request) -> web.Response:
        lookup = Lookup.of(flag(request, "deleted"), flag(request, "deleted_only", "deletedOnly"))
        return reply(page(await self.reads.versions(subject_of(request), lookup), request))

    async def version(self, request: web.Request) -> web.Response:
        return reply((await self._version(request)).to_json())

    async def raw_version(self, request: web.Request) -> web.Response:
        return raw((await self._version(request)).schema.schema)

    async def _version(self, request: web.Request) -> SubjectVersion:
        subject, version = subject_of(request), version_of(request)
        return await self.reads.version(subject, version, deleted=flag(request, "deleted"))

    async def referenced_by(self, request: web.Request) -> web.Response:
        ids = await self.reads.referenced_by(subject_of(request), version_of(request))
        return reply(page(ids, request))

    async def register(self, request: web.Request) -> web.Response:
        subject = subject_of(request)
        body = await read_schema(request, self.parser)
        try:
            normalize = flag(request, "normalize")
            result = await self.registry.register(
                subject, body, actor=actor_of(request), normalize=normalize
            )
        except RegistryError as exc:
            if exc.http_status == 409:
                self.metrics.compatibility_rejections.inc()
            raise
        if result.created:
            self.metrics.registrations.inc()
        return reply(result.version.to_json())

    async def lookup(self, request: web.Request) -> web.Response:
        subject = subject_of(request)
        body = await read_schema(request, self.parser)
        found = await self.registry.lookup(subject, body, deleted=flag(request, "deleted"))
        return reply(found.to_json())

    # -- compatibility ------------------------------------------------------------------------

    async def compatibility(self, request: web.Request) -> web.Response:
        return await self._compatibility(request, version_of(request))

    async def compatibility_all(self, request: web.Request) -> web.Response:
        return await self._compatibility(request, None)

    async def _compatibility(self, request: web.Request, version: int | None) -> web.Response:
        subject = subject_of(request)
        body = await read_schema(request, self.parser)
        messages = await self.registry.test_compatibility(subject, version, body)
        out: dict[str, Any] = {"is_compatible": not messages}
        if flag(request, "verbose"):
            out["messages"] = messages
        return reply(out)
