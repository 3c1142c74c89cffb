"""The data protection officer's page: one person's disclosures from the audit -- which agency
received which fields of which topic, when, for what purpose and under which legal basis.

The personal id is sent in a POST body, never in a URL, so it stays out of addresses,
browser history and access logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sync.audit.chain import Entry
from sync.console.html import esc, page, table
from sync.console.sessions import Session

OPS = {"c": "created", "u": "updated", "d": "removed", "r": "initial copy"}
PERSONAL_ID_MAX = 64


def lookup_form(session: Session, personal_id: str = "") -> str:
    return (
        '<form method="post" action="/disclosures">'
        f'<input type="hidden" name="form_token" value="{esc(session.form_token)}">'
        '<label for="personal_id">Personal id</label>'
        f'<input id="personal_id" name="personal_id" value="{esc(personal_id)}" '
        f'maxlength="{PERSONAL_ID_MAX}" autocomplete="off" required>'
        ' <button type="submit">Show disclosures</button></form>'
    )


def disclosures_page(
    session: Session,
    personal_id: str = "",
    entries: Sequence[Entry] | None = None,
    agency_names: Mapping[str, str] | None = None,
    problem: str = "",
) -> str:
    """The form, and the answer for ``personal_id`` when ``entries`` is given."""
    parts = [
        "<p>What the audit recorded about one person. It shows personal data: answer only "
        "the person or their authorised handler.</p>",
        lookup_form(session, personal_id),
    ]
    if problem:
        parts.append(f'<p class="error" role="alert">{esc(problem)}</p>')
    if entries is not None:
        parts.append(_answer(personal_id, entries, agency_names or {}))
    return page("Disclosures about a person", "".join(parts), session)


def _agency(code: str, names: Mapping[str, str]) -> str:
    if code not in names:
        return f"<code>{esc(code)}</code>"
    return f"{esc(names[code])} (<code>{esc(code)}</code>)"


def _answer(personal_id: str, entries: Sequence[Entry], names: Mapping[str, str]) -> str:
    if not entries:
        return f"<p>No disclosure recorded about {esc(personal_id)}.</p>"
    rows = [
        (
            esc(e.recorded_at.strftime("%Y-%m-%d %H:%M:%S %z")),
            _agency(e.agency, names),
            esc(e.topic),
            esc(OPS.get(e.op, e.op)),
            esc(", ".join(e.fields)),
            esc(e.purpose),
            esc(e.legal_basis),
            esc(e.committed_at.strftime("%Y-%m-%d %H:%M:%S %z")),
            f"<code>{esc(e.event_id)}</code> ({esc(e.lsn)}#{esc(e.index)})",
        )
        for e in entries
    ]
    headings = (
        "disclosed at",
        "agency",
        "topic",
        "what",
        "fields",
        "purpose",
        "legal basis",
        "source committed at",
        "event",
    )
    caption = f"{len(entries)} disclosures about {personal_id}, oldest first"
    return table(headings, rows, caption)
