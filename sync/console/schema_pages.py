"""The reviewer's pages that show what the registry holds: its subjects, one subject's
versions, and one version's fields with their docs, classifications and ``govsync.subject``
marks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sync.console.fields import FieldInfo, fields_of
from sync.console.html import esc, page, path_part, table
from sync.console.sessions import Session
from sync.contracts.review import RegisteredVersion


@dataclass(frozen=True, slots=True)
class SubjectSummary:
    name: str
    versions: tuple[int, ...]  # live versions, oldest first


def subject_url(subject: str) -> str:
    return f"/subjects/{path_part(subject)}"


def version_url(subject: str, version: int) -> str:
    return f"{subject_url(subject)}/versions/{version}"


def diff_url(subject: str, old: int, new: int) -> str:
    return f"{subject_url(subject)}/diff?old={old}&new={new}"


def subjects_page(subjects: Sequence[SubjectSummary], session: Session) -> str:
    rows = [
        (
            f'<a href="{subject_url(s.name)}">{esc(s.name)}</a>',
            esc(s.versions[-1] if s.versions else "none"),
            esc(", ".join(map(str, s.versions))),
        )
        for s in subjects
    ]
    body = (
        table(("subject", "latest version", "versions"), rows)
        if rows
        else "<p>The registry holds no subject.</p>"
    )
    return page("Subjects", body, session)


def subject_page(
    subject: str, history: Sequence[RegisteredVersion], level: str, session: Session
) -> str:
    """``history``: newest first, as :func:`sync.contracts.review.history` gives it."""
    if not history:
        return page(subject, "<p>No live version.</p>", session)
    latest = history[0]
    rows = [
        (
            f'<a href="{version_url(subject, v.version)}">version {v.version}</a>',
            esc(v.schema_id),
            esc(len(fields_of(v.schema))),
        )
        for v in history
    ]
    parts = [
        f"<p>Compatibility level: <strong>{esc(level)}</strong></p>",
        table(("version", "schema id", "fields"), rows, "Versions, newest first"),
        _diff_form(subject, history),
        f"<h2>Fields of version {latest.version}</h2>",
        fields_table(fields_of(latest.schema)),
    ]
    return page(subject, "".join(parts), session)


def _diff_form(subject: str, history: Sequence[RegisteredVersion]) -> str:
    if len(history) < 2:
        return '<p class="note">One version only: nothing to compare yet.</p>'
    newest, previous = history[0].version, history[1].version

    def select(name: str, label: str, chosen: int) -> str:
        options = "".join(
            f'<option value="{v.version}"{" selected" if v.version == chosen else ""}>'
            f"{v.version}</option>"
            for v in history
        )
        return (
            f'<label for="{name}">{label}</label>'
            f'<select id="{name}" name="{name}">{options}</select>'
        )

    return (
        f'<h2>Compare two versions</h2><form method="get" action="{subject_url(subject)}/diff">'
        + select("old", "Older version", previous)
        + select("new", "Newer version", newest)
        + '<p><button type="submit">Compare</button></p></form>'
        + f'<p><a href="{diff_url(subject, previous, newest)}">'
        + f"Compare version {previous} with version {newest}</a></p>"
    )


def version_page(subject: str, version: RegisteredVersion, session: Session) -> str:
    body = (
        f'<p>Schema id {esc(version.schema_id)} · <a href="{subject_url(subject)}">'
        f"all versions of {esc(subject)}</a></p>" + fields_table(fields_of(version.schema))
    )
    return page(f"{subject} version {version.version}", body, session)


FIELD_HEADINGS = ("field", "type", "classification", "identifies a person", "doc")


def field_cells(f: FieldInfo) -> tuple[str, ...]:
    default = f" (default {esc(f.default)})" if f.default is not None else ""
    return (
        f"<code>{esc(f.name)}</code>",
        esc(f.type) + default,
        esc(f.classification or "none given"),
        esc(f.subject_kind or ""),
        esc(f.doc),
    )


def fields_table(fields: Sequence[FieldInfo]) -> str:
    if not fields:
        return "<p>This schema is no record.</p>"
    return table(FIELD_HEADINGS, [field_cells(f) for f in fields])
