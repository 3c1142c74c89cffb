"""Reading requests and writing responses the way Confluent's Schema Registry does.

Path parameters are validated here once for every route: subjects (any character but control
characters, as clients URL-encode them), versions (1..2^31-1, ``latest`` or ``-1``) and schema
ids. Request bodies are bounded: a schema body by the parser's limit, answered 42201 like any
other schema beyond a limit; config and mode bodies, which are a few bytes, by 64 KiB. A large
schema body is decoded by the parser's workers, so no request holds the event loop for long.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sync.errors import RegistryError
from sync.registry.audit import ANONYMOUS, Actor
from sync.registry.model import (
    SchemaInput,
    invalid_schema,
    parse_version,
    schema_not_found,
    validate_subject,
)
from sync.registry.parser_pool import ParserPool
from sync.registry.parsing import decode_schema_body

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPTED_BODIES = frozenset(
    {CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json"}
)
INLINE_BODY = 64 * 1024  # bodies up to this size are decoded on the loop: microseconds
MAX_INT = 2**31 - 1  # ids, versions, offsets and limits are Java ints in Confluent's API
ACTOR = "govsync.registry.actor"  # the request key the app's middleware puts the Actor under


def reply(data: Any, status: int = 200) -> web.Response:
    """A JSON response with Confluent's content type (no charset parameter, as Confluent)."""
    body = json.dumps(data, ensure_ascii=False).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": CONTENT_TYPE})


def raw(text: str) -> web.Response:
    """A schema as the body itself (the ``.../schema`` endpoints), with Confluent's type."""
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def read_schema(request: web.Request, parser: ParserPool) -> SchemaInput:
    """The schema a request carries; 42201 when its body is beyond the parser's limit."""
    limit = parser.limits.max_body_bytes
    too_large = invalid_schema(f"the request body is larger than {limit:,} bytes")
    body = await _read_body(request, limit, too_large)
    if len(body) > INLINE_BODY:
        return await parser.decode(body)
    return decode_schema_body(body)


async def read_json(request: web.Request) -> Any:
    """A small JSON body (config, mode); 413 above 64 KiB, 400 when malformed."""
    too_large = RegistryError(413, 413, f"the request body is larger than {INLINE_BODY:,} bytes")
    body = await _read_body(request, INLINE_BODY, too_large)
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError) as exc:
        raise RegistryError(400, 400, f"Unparseable request body: {exc}") from None


async def _read_body(request: web.Request, limit: int, too_large: RegistryError) -> bytes:
    if "Content-Type" in request.headers and request.content_type not in ACCEPTED_BODIES:
        raise RegistryError(415, 415, "HTTP 415 Unsupported Media Type")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def flag(request: web.Request, *names: str) -> bool:
    """A boolean query parameter; clients send ``true``, ``True`` or ``1``."""
    return any(request.query.get(n, "").lower() in {"true", "1"} for n in names)


def paging(request: web.Request) -> tuple[int, int]:
    """``offset`` (at least 0) and ``limit`` (negative: no limit) query parameters."""
    try:
        offset = max(int(request.query.get("offset", "0")), 0)
        limit = int(request.query.get("limit", "-1"))
    except ValueError:
        raise RegistryError(400, 400, "offset and limit must be integers") from None
    return min(offset, MAX_INT), min(limit, MAX_INT)


def page(items: list[Any], request: web.Request) -> list[Any]:
    """Apply ``offset`` and ``limit`` to a whole list, as Confluent's list endpoints."""
    offset, limit = paging(request)
    return items[offset : offset + limit] if limit >= 0 else items[offset:]


def actor_of(request: web.Request) -> Actor:
    """Who sends ``request``, for the write log: as authenticated, or anonymous."""
    actor = request.get(ACTOR)
    return actor if isinstance(actor, Actor) else Actor(ANONYMOUS.principal, request.remote)


def subject_of(request: web.Request) -> str:
    return validate_subject(request.match_info["subject"])


def optional_subject(request: web.Request) -> str | None:
    """The subject of a config or mode route; None on the global route."""
    subject = request.match_info.get("subject")
    return None if subject is None else validate_subject(subject)


def subject_filter(request: web.Request) -> str | None:
    """The ``subject`` query parameter of the ``/schemas/ids/...`` routes."""
    subject = request.query.get("subject")
    return None if subject is None else validate_subject(subject)


def version_of(request: web.Request) -> int:
    return parse_version(request.match_info["version"])


def schema_id_of(request: web.Request) -> int:
    text = request.match_info["id"]
    try:
        schema_id = int(text)
    except ValueError:
        raise schema_not_found(text) from None
    if not 1 <= schema_id <= MAX_INT:
        raise schema_not_found(schema_id)
    return schema_id
