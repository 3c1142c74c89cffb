"""The console's pages as handlers: each reads what it shows in a thread (the registry client
and the audit's psycopg connection block) and renders it with the page modules."""

from __future__ import annotations

import asyncio
import logging

import psycopg
from aiohttp import web

from sync.console.app import CONSOLE, html, session_of
from sync.console.backends import AuditMissing, RegistryUnavailable, disclosures
from sync.console.disclosure_page import PERSONAL_ID_MAX, disclosures_page
from sync.console.html import message_page
from sync.console.review_page import review_page, review_versions
from sync.console.schema_pages import subject_page, subjects_page, version_page

log = logging.getLogger(__name__)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/subjects", _subjects)
    router.add_get("/subjects/{subject}", _subject)
    router.add_get("/subjects/{subject}/versions/{version:[0-9]+}", _version)
    router.add_get("/subjects/{subject}/diff", _diff)
    router.add_get("/disclosures", _disclosure_form)
    router.add_post("/disclosures", _disclosures)


def _unavailable(request: web.Request, exc: Exception) -> web.Response:
    log.warning("console: %s", exc)
    return html(message_page("Registry unavailable", str(exc), session_of(request)), 502)


def _not_found(request: web.Request, what: str) -> web.Response:
    return html(message_page("Not found", what, session_of(request)), 404)


async def _subjects(request: web.Request) -> web.Response:
    registry = request.app[CONSOLE].registry
    try:
        subjects = await asyncio.to_thread(registry.subjects)
    except RegistryUnavailable as exc:
        return _unavailable(request, exc)
    return html(subjects_page(subjects, session_of(request)))


async def _subject(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    registry = request.app[CONSOLE].registry
    try:
        history = await asyncio.to_thread(registry.history, subject)
        if not history:
            return _not_found(request, f"The registry has no subject {subject}.")
        level = await asyncio.to_thread(registry.level, subject)
    except RegistryUnavailable as exc:
        return _unavailable(request, exc)
    return html(subject_page(subject, history, level, session_of(request)))


async def _version(request: web.Request) -> web.Response:
    subject, number = request.match_info["subject"], int(request.match_info["version"])
    try:
        history = await asyncio.to_thread(request.app[CONSOLE].registry.history, subject)
    except RegistryUnavailable as exc:
        return _unavailable(request, exc)
    for version in history:
        if version.version == number:
            return html(version_page(subject, version, session_of(request)))
    return _not_found(request, f"{subject} has no live version {number}.")


async def _diff(request: web.Request) -> web.Response:
    subject = request.match_info["subject"]
    console = request.app[CONSOLE]
    try:
        old, new = int(request.query["old"]), int(request.query["new"])
    except (KeyError, ValueError):
        return html(message_page("Which versions?", "Give ?old=N&new=M.", session_of(request)), 400)
    if old == new:
        return html(
            message_page("Same version", "Choose two different versions.", session_of(request)),
            400,
        )
    try:
        history = await asyncio.to_thread(console.registry.history, subject)
        level = await asyncio.to_thread(console.registry.level, subject) if history else ""
    except RegistryUnavailable as exc:
        return _unavailable(request, exc)
    try:
        review = review_versions(
            subject, history, old, new, level, console.manifest, console.topic_prefix
        )
    except KeyError:
        return _not_found(request, f"{subject} has no live version {old} or {new}.")
    return html(review_page(review, session_of(request)))


async def _disclosure_form(request: web.Request) -> web.Response:
    return html(disclosures_page(session_of(request)))


async def _disclosures(request: web.Request) -> web.Response:
    session, console = session_of(request), request.app[CONSOLE]
    form = await request.post()
    personal_id = str(form.get("personal_id", "")).strip()
    if not personal_id or len(personal_id) > PERSONAL_ID_MAX:
        problem = f"Give a personal id of 1 to {PERSONAL_ID_MAX} characters."
        return html(disclosures_page(session, problem=problem), 400)
    if not console.audit_dsn:
        problem = "This console was started without the audit's DSN (GOVSYNC_AUDIT_DSN)."
        return html(disclosures_page(session, personal_id, problem=problem), 503)
    try:
        entries = await asyncio.to_thread(disclosures, console.audit_dsn, personal_id)
    except AuditMissing:
        problem = "The audit database holds no audit yet (govsync audit init creates it)."
        return html(disclosures_page(session, personal_id, problem=problem), 503)
    except psycopg.Error as exc:  # the message names the server, never the person
        log.warning("console: cannot read the audit: %s", type(exc).__name__)
        problem = "The audit could not be read; the console's log says why."
        return html(disclosures_page(session, personal_id, problem=problem), 502)
    # who asked is logged, never about whom
    log.info("console: %s read one person's disclosures", session.user)
    names = {a.code: a.name for a in console.manifest.agencies} if console.manifest else {}
    return html(disclosures_page(session, personal_id, entries, names))
