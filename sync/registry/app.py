"""The registry's aiohttp application: routes, the one error middleware, metrics, auth.

Every failure, wherever it is raised, leaves through :func:`_middleware` as Confluent's error
body ``{"error_code": N, "message": "..."}`` with its HTTP status: a
:class:`~sync.errors.RegistryError` keeps its code, aiohttp's own 404/405 become codes 404/405,
and anything unexpected is logged and answered 500. The same middleware counts each request
by route template and status, so the metrics see exactly what clients saw.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sync.errors import RegistryError
from sync.registry.access import METRICS_PATH, REALM, AccessPolicy
from sync.registry.http_io import ACTOR, reply
from sync.registry.metrics import UNMATCHED, RegistryMetrics
from sync.registry.parser_pool import ParserPool
from sync.registry.routes import Routes
from sync.registry.store import PgStore

log = logging.getLogger(__name__)

METRICS = web.AppKey("metrics", RegistryMetrics)
ACCESS = web.AppKey("access", AccessPolicy)


def create_app(
    store: PgStore,
    *,
    parser: ParserPool | None = None,
    metrics_registry: CollectorRegistry | None = None,
    access: AccessPolicy | None = None,
) -> web.Application:
    """The registry over ``store``, parsing schemas with ``parser``.

    Without ``parser``, the app parses in a thread of its own under the default limits and
    closes that thread when it stops; a parser passed in is the caller's to close.
    Metrics are registered on ``metrics_registry`` (a fresh one when None). ``access`` names
    the users and their roles; without it (or without users) auth is off.
    """
    metrics = RegistryMetrics(metrics_registry or CollectorRegistry())
    pool = parser or ParserPool(workers=0)
    # aiohttp refuses larger bodies while reading them; the routes answer that as Confluent's
    # 42201 with the limit
    app = web.Application(middlewares=[_middleware], client_max_size=pool.limits.max_body_bytes)
    app[METRICS] = metrics
    app[ACCESS] = access or AccessPolicy()
    Routes(store, pool, metrics).install(app.router)
    app.router.add_get(METRICS_PATH, _metrics)
    if parser is None:

        async def close_parser(_: web.Application) -> None:
            pool.close()

        app.on_cleanup.append(close_parser)
    return app


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        request[ACTOR] = request.app[ACCESS].check(request, _endpoint(request))
        response = await handler(request)
    except RegistryError as exc:
        response = _error(exc.http_status, exc.error_code, exc.message)
    except web.HTTPException as exc:  # no such route, method not allowed, body too large
        response = _error(exc.status, exc.status, f"HTTP {exc.status} {exc.reason}")
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        response = _error(500, 500, "Internal Server Error")
    elapsed = time.perf_counter() - started
    request.app[METRICS].observe(_endpoint(request), response.status, elapsed)
    return response


def _error(status: int, code: int, message: str) -> web.Response:
    response = reply({"error_code": code, "message": message}, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return response


def _endpoint(request: web.Request) -> str:
    """The route template of ``request``: the metrics label, free of concrete subjects."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    headers = {"Content-Type": CONTENT_TYPE_LATEST}
    return web.Response(body=generate_latest(registry), headers=headers)
