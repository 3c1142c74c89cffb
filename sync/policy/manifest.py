"""Load the federation manifest: one YAML file, checked before anything runs.

Reading is safe by construction. The data comes only from ``yaml.safe_load``, which builds
plain dicts, lists and scalars. Before it, a structural pass over PyYAML's node graph (which
constructs nothing) refuses what ``safe_load`` would accept silently: a tag outside YAML's core
schema (an object-constructing tag such as ``!!python/object`` is named with its path rather
than left to a constructor error), anchors and aliases (nested aliases would expand
exponentially in validation), merge keys, and a key repeated in one mapping (``safe_load``
keeps the last one, so a second ``fields:`` would silently replace the first).

Then pydantic validates each entry (:mod:`sync.policy.models`) and the cross-checks run against
the contracts (:mod:`sync.policy.checks`). Every problem is a :class:`ManifestError` naming the
file, the path inside it and the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sync.contracts.loader import Contract
from sync.policy.checks import Problem, manifest_problems, subscription_problems
from sync.policy.models import Agency, Manifest, ManifestError, Source, Subscription

# the federation of this repository: the embedded stack and the rendered deployments
FEDERATION_FILE = Path(__file__).resolve().parents[2] / "federation.yaml"
MAX_BYTES = 1 << 20
ROOT = "(root)"

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
_TRANSFORM_KINDS = frozenset(("mask", "hash", "year"))

__all__ = [
    "FEDERATION_FILE",
    "Agency",
    "Manifest",
    "ManifestError",
    "Source",
    "Subscription",
    "load_manifest",
    "subscription_problems",
]


def load_manifest(path: Path | str, contracts: Mapping[str, Contract]) -> Manifest:
    """The manifest in ``path``, checked against ``contracts`` (by topic, as
    :func:`sync.contracts.load_contracts` returns them)."""
    file = str(path)
    data = _read_yaml(Path(path), file)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise _error(file, [_pydantic_problem(e) for e in exc.errors()]) from None
    problems = list(manifest_problems(manifest, contracts))
    if problems:
        raise _error(file, problems)
    return manifest


def _read_yaml(path: Path, file: str) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(file, ROOT, f"cannot read the manifest: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ManifestError(file, ROOT, f"the manifest is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        problems = list(_structure_problems(root, ROOT, set()))
        if problems:
            raise _error(file, problems)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ManifestError(file, ROOT, f"not UTF-8 text: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(file, _mark(exc), f"not valid YAML: {_yaml_reason(exc)}") from None
    except RecursionError:
        raise ManifestError(file, ROOT, "the YAML is nested too deeply") from None
    if not isinstance(data, dict):
        raise ManifestError(file, ROOT, "the manifest must be a mapping (version, agencies, …)")
    return data


def _structure_problems(node: Any, path: str, seen: set[int]) -> Iterator[Problem]:
    if node is None:
        return
    if id(node) in seen:
        yield path, "anchors and aliases are not allowed: write the value out"
        return
    seen.add(id(node))
    if node.tag not in _ALLOWED_TAGS:
        yield path, f"YAML tag {node.tag.replace(_CORE, '!!')!r} is not allowed"
        return
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _structure_problems(item, f"{path}[{i}]", seen)
    elif isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            child = name if path == ROOT else f"{path}.{name}"
            if key.tag == _CORE + "merge":
                yield child, "merge keys (<<) are not allowed: write the entries out"
            elif name in keys:
                yield child, f"key {name!r} appears twice in this mapping"
            keys.add(name)
            yield from _structure_problems(key, child, seen)
            yield from _structure_problems(value, child, seen)


def _pydantic_problem(error: Mapping[str, Any]) -> Problem:
    loc = [part for part in error["loc"] if part != "[key]"]  # a mapping key's own error
    if "transforms" in loc:
        at = loc.index("transforms") + 2
        if at < len(loc) and loc[at] in _TRANSFORM_KINDS:
            del loc[at]  # the union's tag, not a level of the file
    reason = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_type":
        reason += " (quote it: unquoted, YAML reads 01 as a number, yes as true, a date as a date)"
    return _path(loc), reason


def _path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or ROOT


def _error(file: str, problems: list[Problem]) -> ManifestError:
    path, reason = problems[0]
    return ManifestError(file, path, reason, tuple(problems))


def _mark(exc: Any) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    return ROOT


def _yaml_reason(exc: Any) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        return str(exc.problem)
    return str(exc).strip()
