"""A side-by-side diff of two versions of a subject with the house review: the changes
(:func:`sync.contracts.diff.diff`), a verdict per compatibility level
(:func:`sync.contracts.verdicts.verdicts`), and for each changed field the subscriptions of
the federation manifest that receive it (:func:`sync.policy.affected.reach`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sync.console.fields import FieldInfo, fields_of, topic_of
from sync.console.html import esc, page, table
from sync.console.schema_pages import FIELD_HEADINGS, field_cells, subject_url, version_url
from sync.console.sessions import Session
from sync.contracts.diff import Change, diff
from sync.contracts.review import RegisteredVersion
from sync.contracts.verdicts import Verdict, verdicts
from sync.policy import Manifest
from sync.policy.affected import Reach, reach


@dataclass(frozen=True, slots=True)
class Review:
    subject: str
    old: RegisteredVersion
    new: RegisteredVersion
    changes: list[Change]
    verdicts: list[Verdict]
    configured: str
    topic: str
    manifest: Manifest | None
    reaches: list[Reach]  # each changed row field and who receives it


def review_versions(
    subject: str,
    history: Sequence[RegisteredVersion],
    old: int,
    new: int,
    configured: str,
    manifest: Manifest | None,
    topic_prefix: str = "",
) -> Review:
    """Review version ``new`` as if it followed version ``old``: non-transitive levels compare
    it with ``old``, transitive ones with every version up to ``old``. ``history`` is newest
    first; a KeyError names a version it lacks."""
    by_number = {v.version: v for v in history}
    before, after = by_number[old], by_number[new]
    earlier = [(v.version, v.parsed.schema) for v in history if v.version <= old and v is not after]
    changes = diff(before.schema, after.schema)
    topic = topic_of(subject, topic_prefix)
    names = {f.name for f in (*fields_of(before.schema), *fields_of(after.schema))}
    reaches = reach(manifest, topic, names, changes) if manifest is not None and topic else []
    return Review(
        subject=subject,
        old=before,
        new=after,
        changes=changes,
        verdicts=verdicts(after.parsed.schema, earlier),
        configured=configured,
        topic=topic,
        manifest=manifest,
        reaches=reaches,
    )


def review_page(review: Review, session: Session) -> str:
    s, old, new = review.subject, review.old.version, review.new.version
    parts = [
        f'<p><a href="{subject_url(s)}">All versions of {esc(s)}</a> · '
        f'<a href="{version_url(s, old)}">version {old}</a> · '
        f'<a href="{version_url(s, new)}">version {new}</a></p>',
        "<h2>Verdict per compatibility level</h2>",
        _verdicts(review),
        "<h2>Changes</h2>",
        _changes(review.changes),
        "<h2>Who receives each changed field</h2>",
        _reaches(review),
        "<h2>Side by side</h2>",
        side_by_side(fields_of(review.old.schema), fields_of(review.new.schema), old, new),
    ]
    return page(f"{s}: version {old} against {new}", "".join(parts), session)


def _verdicts(review: Review) -> str:
    rows = []
    for v in review.verdicts:
        word = (
            '<span class="ok">accepted</span>'
            if v.compatible
            else '<span class="no">refused</span>'
        )
        level = esc(v.level.value)
        if v.level.value == review.configured:
            level = f"<strong>{level}</strong> (this subject's level)"
        rows.append((level, word, "<br>".join(esc(r) for r in v.reasons)))
    return table(("level", "verdict", "reasons"), rows)


def _changes(changes: Sequence[Change]) -> str:
    if not changes:
        return "<p>The two versions are the same.</p>"
    rows = [(esc(c.path or "(the schema)"), esc(c.kind.value), esc(c.message)) for c in changes]
    return table(("where", "kind", "change"), rows)


def _reaches(review: Review) -> str:
    manifest = review.manifest
    if manifest is None or not review.topic:
        return "<p>No federation manifest for this subject's topic: who receives it is unknown.</p>"
    if not review.reaches:
        return "<p>No row field changed.</p>"
    names = {a.code: a.name for a in manifest.agencies}
    rows = []
    for found in review.reaches:
        field = f"<code>{esc(found.field)}</code>"
        if not found.receivers:
            rows.append((field, "no subscription", "", "", ""))
        for r in found.receivers:
            basis = manifest.subscription(r.agency, review.topic).legal_basis
            agency = f"{esc(names.get(r.agency, r.agency))} (<code>{esc(r.agency)}</code>)"
            rows.append((field, agency, esc(r.how), esc(r.purpose), esc(basis)))
    return table(("field", "agency", "how", "purpose", "legal basis"), rows)


def side_by_side(
    old: Sequence[FieldInfo], new: Sequence[FieldInfo], old_version: int, new_version: int
) -> str:
    """One row per field name of either version, old on the left, new on the right."""
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}
    names = [f.name for f in old] + [f.name for f in new if f.name not in before]
    blank = ("",) * len(FIELD_HEADINGS)
    headings = [f"{h} (v{old_version})" for h in FIELD_HEADINGS]
    headings += [f"{h} (v{new_version})" for h in FIELD_HEADINGS]
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headings)
    rows = []
    for name in names:
        a, b = before.get(name), after.get(name)
        state = "added" if a is None else "removed" if b is None else "changed" if a != b else ""
        cells = (field_cells(a) if a else blank) + (field_cells(b) if b else blank)
        css = f' class="{state}"' if state else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    body = "".join(rows)
    return f'<table class="diff"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
