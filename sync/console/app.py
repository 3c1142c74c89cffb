"""The console's aiohttp application: the login, the session check in front of every other
page, the role check in front of the data protection officer's, and the headers every answer
carries. The pages themselves are in :mod:`sync.console.views`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from sync.console.backends import RegistryView
from sync.console.html import STYLESHEET, esc, message_page, page
from sync.console.sessions import COOKIE, Session, Sessions
from sync.console.users import ConsoleUsers, Role
from sync.policy import Manifest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC = frozenset({"/login", "/console.css"})
DPO_ONLY = ("/disclosures",)
SECURITY_HEADERS = {
    # no script, no frame, nothing from elsewhere; forms post to the console only
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the pages need: who may log in, who is logged in, and where to read."""

    users: ConsoleUsers
    registry: RegistryView
    audit_dsn: str
    manifest: Manifest | None
    topic_prefix: str = ""
    sessions: Sessions | None = None

    def __post_init__(self) -> None:
        self.sessions = self.sessions or Sessions()


CONSOLE = web.AppKey("console", Console)
SESSION = "govsync.session"


def create_app(console: Console) -> web.Application:
    from sync.console import views

    app = web.Application(middlewares=[_headers, _require_session], client_max_size=64 * 1024)
    app[CONSOLE] = console
    app.router.add_get("/console.css", _stylesheet)
    app.router.add_get("/login", _login_form)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/", _home)
    views.add_routes(app.router)
    return app


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own answers: 404, 405, 413
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC:
        return await handler(request)
    sessions = _sessions(request)
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return redirect("/login")
    if request.path.startswith(DPO_ONLY) and session.role is not Role.DPO:
        return html(
            message_page("Not allowed", "This page is for the data protection officer.", session),
            403,
        )
    if request.method == "POST":
        form = await request.post()
        if not session.form_token_matches(str(form.get("form_token", ""))):
            return html(message_page("Not allowed", "The form has expired.", session), 403)
    request[SESSION] = session
    return await handler(request)


def _sessions(request: web.Request) -> Sessions:
    sessions = request.app[CONSOLE].sessions
    assert sessions is not None
    return sessions


async def _stylesheet(_request: web.Request) -> web.Response:
    return web.Response(text=STYLESHEET, content_type="text/css", charset="utf-8")


async def _home(_request: web.Request) -> web.Response:
    return redirect("/subjects")


def login_page(problem: str = "", name: str = "") -> str:
    alert = f'<p class="error" role="alert">{esc(problem)}</p>' if problem else ""
    form = (
        f'{alert}<form method="post" action="/login">'
        '<label for="name">User name</label>'
        f'<input id="name" name="name" value="{esc(name)}" autocomplete="username" required '
        "autofocus>"
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<p><button type="submit">Log in</button></p></form>'
    )
    return page("Log in", form)


async def _login_form(_request: web.Request) -> web.Response:
    return html(login_page())


async def _login(request: web.Request) -> web.Response:
    form = await request.post()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    console = request.app[CONSOLE]
    user = await asyncio.to_thread(console.users.authenticate, name, password)
    if user is None:
        return html(login_page("Wrong user name or password.", name), 401)
    response = redirect("/disclosures" if user.role is Role.DPO else "/subjects")
    response.set_cookie(
        COOKIE,
        _sessions(request).start(user),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    _sessions(request).end(request.cookies.get(COOKIE))
    response = redirect("/login")
    response.del_cookie(COOKIE, path="/")
    return response
