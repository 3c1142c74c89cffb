"""The pages' frame: escaping, the layout every page shares, tables and the stylesheet.

Every value shown is escaped here or by the caller through :func:`esc`; nothing is written
into a page unescaped but the markup these functions build. No script runs in a page: the
forms and links work with a keyboard alone, and a visible outline shows where focus is.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from sync.console.sessions import Session
from sync.console.users import Role

STYLESHEET = """
:root { color-scheme: light; font-family: system-ui, sans-serif; color: #1b1f24; }
body { margin: 0; background: #f6f7f9; }
header { background: #0b3d66; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem;
  align-items: center; flex-wrap: wrap; }
header a, header button { color: #fff; font: inherit; }
header .who { margin-left: auto; }
header form { display: inline; }
header button { background: none; border: 1px solid #fff; border-radius: 3px; cursor: pointer; }
main { padding: 1rem 1.2rem; }
h1 { font-size: 1.4rem; }
caption { text-align: left; padding: .3rem 0; }
table { border-collapse: collapse; background: #fff; margin-bottom: 1rem; }
th, td { border: 1px solid #c9ced6; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #e8ecf1; }
tr.changed td { background: #fff4d6; }
tr.added td { background: #e2f5e4; }
tr.removed td { background: #fbe3e3; }
.ok { color: #116329; font-weight: bold; }
.no { color: #a40e26; font-weight: bold; }
.side { display: flex; gap: 1rem; flex-wrap: wrap; }
.note { color: #4d5560; }
.error { color: #a40e26; }
a:focus, button:focus, input:focus, select:focus, summary:focus {
  outline: 3px solid #f0a500; outline-offset: 2px; }
.skip { position: absolute; left: -10000px; }
.skip:focus { position: static; }
label { display: block; margin: .4rem 0 .1rem; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def path_part(text: str) -> str:
    """``text`` as one URL path segment (a subject may hold '/' or '?')."""
    return quote(text, safe="")


def page(title: str, body: str, session: Session | None = None) -> str:
    """A whole page: ``body`` is markup, ``title`` text."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · govsync console</title>"
        '<link rel="stylesheet" href="/console.css"></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'{_header(session)}<main id="main"><h1>{esc(title)}</h1>{body}</main></body></html>'
    )


def _header(session: Session | None) -> str:
    if session is None:
        return "<header><strong>govsync console</strong></header>"
    links = ['<a href="/subjects">Subjects</a>']
    if session.role is Role.DPO:
        links.append('<a href="/disclosures">Disclosures</a>')
    logout = (
        '<form method="post" action="/logout">'
        f'<input type="hidden" name="form_token" value="{esc(session.form_token)}">'
        '<button type="submit">Log out</button></form>'
    )
    return (
        '<header><strong>govsync console</strong><nav aria-label="main">'
        + " · ".join(links)
        + f'</nav><span class="who">{esc(session.user)} ({esc(session.role.value)})</span>'
        + f"{logout}</header>"
    )


def table(headings: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    """A table; each cell of ``rows`` is markup already escaped by the caller."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def message_page(title: str, text: str, session: Session | None = None) -> str:
    return page(title, f"<p>{esc(text)}</p>", session)
