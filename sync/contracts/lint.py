"""House rules for the contracts in ``schemas/avro/<domain>/``, checked before review.

Apache Avro accepts much that govsync cannot use: a field without a ``doc``, a decimal without
a precision (only a warning), a name with a space in it. These rules hold every contract to
what the replicas and the reviewers need:

* the record's namespace is ``vn.gov.<domain>``, ``<domain>`` being its directory;
* the record and every field carry a non-empty ``doc``;
* every field carries a ``classification``: public, internal, personal or sensitive_personal;
* logical types are well formed (a decimal has a precision and a scale not above it, on bytes
  or fixed; a date is an int; timestamps are longs…);
* a nullable field is ``["null", T]`` with default null, and no other union is allowed;
* names are lowercase snake_case and safe SQL identifiers (no SQL reserved word);
* every key field is in the row with the same type, and is not nullable;
* no attribute still holds a placeholder of ``govsync schemas scaffold`` (text starting
  ``TODO:``): a person writes each doc, chooses each classification and settles each
  ``govsync.subject``;
* every field that identifies a person carries ``govsync.subject``, the kind of identifier
  it holds: ``personal_id``, ``tax_code`` or ``insurance_number``
  (:mod:`sync.contracts.attributes`). A field's name says it identifies a person when it is
  ``personal_id`` or ``*_personal_id``, ``insurance_number`` or ``*_insurance_number`` (always),
  or ``tax_code`` or ``*_tax_code`` classified personal or sensitive_personal (an enterprise's
  tax code is public registration data). Any other field that identifies a person is marked
  by its reviewer; a marked field's kind may not contradict its name, it is classified
  personal or sensitive_personal, and a key field is marked as the row's field is.

:func:`lint` checks a whole directory and reports every failure, each naming its file and
field, instead of stopping at the first one as loading a contract does.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync.contracts.attributes import SUBJECT_ATTRIBUTE, subject_named
from sync.contracts.compatibility import InvalidSchema, Level, parse
from sync.contracts.lint_schema import (
    SQL_RESERVED,
    Issue,
    SchemaRules,
    display_path,
    identifier_problem,
    is_nullable,
    show_type,
)

__all__ = ["SQL_RESERVED", "Issue", "LintReport", "identifier_problem", "lint", "lint_contract"]


@dataclass(slots=True)
class LintReport:
    """Everything :func:`lint` found under ``root``."""

    root: Path
    contracts: int = 0
    files: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    def summary(self) -> str:
        where = display_path(self.root)
        if self.ok:
            counted = f"{_count(self.contracts, 'contract')} ({_count(self.files, 'schema file')})"
            return f"schemas lint: {counted} under {where}: no problems"
        broken = len({i.path.parent / _entity_of(i.path) for i in self.issues})
        return (
            f"schemas lint: {_count(len(self.issues), 'problem')} in {broken} of "
            f"{_count(self.contracts, 'contract')} under {where}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "root": display_path(self.root),
            "contracts": self.contracts,
            "files": self.files,
            "ok": self.ok,
            "issues": [i.to_json() for i in self.issues],
        }


def lint(root: Path) -> LintReport:
    """Check every contract under ``root`` (``<domain>/<entity>.avsc`` with its
    ``<entity>-key.avsc``) and return all the problems found."""
    report = LintReport(root)
    if not root.is_dir():
        report.issues.append(Issue(root, "", "layout", "is not a directory of contracts"))
        return report
    for path in sorted(root.glob("*.avsc")):
        report.files += 1
        report.issues.append(
            Issue(path, "", "layout", "is outside a <domain>/ directory, so no contract uses it")
        )
    for path in sorted(root.glob("*/*.avsc")):
        report.files += 1
        if path.stem.endswith("-key"):
            if not path.with_name(path.name.removesuffix("-key.avsc") + ".avsc").exists():
                message = "is a key schema without its row schema beside it"
                report.issues.append(Issue(path, "", "key", message))
            continue
        report.contracts += 1
        report.issues += lint_contract(path)
    return report


def lint_contract(path: Path) -> list[Issue]:
    """The problems of one contract: the row schema at ``path`` and its key schema."""
    domain, entity = path.parent.name, path.stem
    issues: list[Issue] = []
    for what, name in (("domain directory", domain), ("entity file name", entity)):
        problem = identifier_problem(name)
        if problem:
            issues.append(Issue(path, "", "name", f"{what} {name!r} {problem}"))
    row, row_issues = _read(path)
    issues += row_issues
    key_path = path.with_name(f"{entity}-key.avsc")
    key: dict[str, Any] | None = None
    if key_path.exists():
        key, key_issues = _read(key_path)
        issues += key_issues
    else:
        issues.append(
            Issue(path, "", "key", f"the contract has no key schema {key_path.name} beside it")
        )
    if row is not None:
        issues += SchemaRules(path, domain).check(row)
        issues += _attributes(path, row)
    if key is not None:
        issues += SchemaRules(key_path, domain).check(key)
    if row is not None and key is not None:
        issues += _key_in_row(key_path, row, key)
    return issues


def _read(path: Path) -> tuple[dict[str, Any] | None, list[Issue]]:
    """The schema in ``path`` when it is a JSON record Avro can parse, with what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Issue(path, "", "avro", f"cannot be read as JSON: {exc}")]
    if not isinstance(document, dict) or document.get("type") != "record":
        return None, [Issue(path, "", "avro", "is not an Avro record schema")]
    with warnings.catch_warnings():
        # Avro only warns about malformed logical types; the rules below report them.
        warnings.simplefilter("ignore")
        try:
            parse(text)
        except InvalidSchema as exc:
            return None, [Issue(path, "", "avro", f"is not a valid Avro schema: {exc.detail}")]
    if not isinstance(document.get("fields"), list):
        return None, [Issue(path, "", "avro", "has no list of fields")]
    return document, []


def _attributes(path: Path, row: dict[str, Any]) -> Iterator[Issue]:
    level = row.get("govsync.compatibility")
    if level is not None and level not in set(Level):
        choices = ", ".join(Level)
        yield Issue(
            path, "", "attribute", f"govsync.compatibility {level!r} is not one of {choices}"
        )
    table = row.get("govsync.table")
    if table is not None:
        problem = identifier_problem(table) if isinstance(table, str) else "is not a string"
        if problem:
            yield Issue(path, "", "name", f"govsync.table {table!r} {problem}")


def _key_in_row(key_path: Path, row: dict[str, Any], key: dict[str, Any]) -> Iterator[Issue]:
    row_types = {f.get("name"): f.get("type") for f in row["fields"] if isinstance(f, dict)}
    row_subjects = {
        f.get("name"): f.get(SUBJECT_ATTRIBUTE) for f in row["fields"] if isinstance(f, dict)
    }
    if not key["fields"]:
        yield Issue(key_path, "", "key", "has no fields: a key needs at least one")
    for key_field in key["fields"]:
        if not isinstance(key_field, dict):
            continue
        name, key_type = key_field.get("name", ""), key_field.get("type")
        if is_nullable(key_type):
            yield Issue(key_path, name, "key", "is nullable, but a key field must always be set")
        if name not in row_types:
            yield Issue(key_path, name, "key", "is not a field of the row schema")
            continue
        if _marked_otherwise(key_field, row_subjects.get(name)):
            yield Issue(
                key_path,
                name,
                "subject",
                f"has {SUBJECT_ATTRIBUTE} {key_field.get(SUBJECT_ATTRIBUTE)!r} in the key but "
                f"{row_subjects.get(name)!r} in the row; they must be the same",
            )
        if row_types[name] != key_type:
            yield Issue(
                key_path,
                name,
                "key",
                f"has type {show_type(key_type)} in the key but {show_type(row_types[name])} "
                "in the row; they must be the same",
            )


def _marked_otherwise(key_field: dict[str, Any], row_subject: Any) -> bool:
    """Whether a key field's ``govsync.subject`` differs from its row field's. An unmarked
    key field whose name requires the mark is left to the key schema's own rules."""
    name, classification = key_field.get("name", ""), key_field.get("classification")
    if SUBJECT_ATTRIBUTE not in key_field and subject_named(name, classification):
        return False
    return bool(key_field.get(SUBJECT_ATTRIBUTE) != row_subject)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _entity_of(path: Path) -> str:
    return path.stem.removesuffix("-key")
