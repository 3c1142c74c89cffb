"""``govsync manifest check``: the demo manifest passes; a broken one is refused with every
problem, each naming the file, the path inside it and the reason, as text and as JSON; hash
keys are checked against their secrets when the secrets are given."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from sync.cli.main import cli
from sync.policy import FEDERATION_FILE

GSO_CITIZEN_FIELDS = "fields: [personal_id, date_of_birth, sex, province_code, district_code]"
HANOI_FILTER = "    row_filter: province_code == '01'\n"


def check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["manifest", "check", *args])


def broken_manifest(tmp_path: Path) -> Path:
    """The demo manifest with an unknown field and a filter on a field not received."""
    text = FEDERATION_FILE.read_text(encoding="utf-8")
    assert GSO_CITIZEN_FIELDS in text and HANOI_FILTER in text
    text = text.replace(GSO_CITIZEN_FIELDS, GSO_CITIZEN_FIELDS[:-1] + ", nickname]", 1)
    text = text.replace(HANOI_FILTER, "    row_filter: ethnicity == 'Kinh'\n", 1)
    path = tmp_path / "federation.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_manifest_passes() -> None:
    result = check(str(FEDERATION_FILE))
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("8 agencies, 5 sources, 12 subscriptions: no problems")


def test_every_problem_is_printed_with_file_path_and_reason(tmp_path: Path) -> None:
    path = broken_manifest(tmp_path)
    result = check(str(path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines == [
        f"{path}: subscriptions[4].fields[5]: unknown field 'nickname': not a field of "
        "population.citizen",
        f"{path}: subscriptions[6].row_filter: column 1: the filter reads 'ethnicity', which "
        "hanoi does not receive: the rows it receives would disclose it. Filter on a field it "
        "receives in clear, or list 'ethnicity' under filter_only with the reason",
        f"manifest check: 2 problem(s) in {path}",
    ]


def test_json_lists_the_problems_for_scripts(tmp_path: Path) -> None:
    path = broken_manifest(tmp_path)
    result = check(str(path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["file"] == str(path)
    assert [(p["file"], p["path"]) for p in report["problems"]] == [
        (str(path), "subscriptions[4].fields[5]"),
        (str(path), "subscriptions[6].row_filter"),
    ]
    assert json.loads(check(str(FEDERATION_FILE), "--json").output) == {
        "file": str(FEDERATION_FILE),
        "ok": True,
        "problems": [],
    }


def test_yaml_the_loader_refuses_is_a_problem_too(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text("version: 1\nagencies: !!python/object:os.system {}\n", encoding="utf-8")
    result = check(str(path))
    assert result.exit_code == 1
    assert f"{path}: agencies: YAML tag '!!python/object:os.system' is not allowed" in result.output
    missing = check(str(tmp_path / "absent.yaml"))
    assert missing.exit_code == 1
    assert "absent.yaml: (root): cannot read the manifest" in missing.output


def test_hash_keys_without_a_usable_secret(tmp_path: Path) -> None:
    keys = tmp_path / "hash_keys.json"
    keys.write_text(json.dumps({"unrelated": "x" * 64}), encoding="utf-8")
    result = check(str(FEDERATION_FILE), "--hash-keys-file", str(keys))
    assert result.exit_code == 1
    assert (
        f"{FEDERATION_FILE}: subscriptions[4].transforms.personal_id.key: no secret for hash key "
        "'gso_pseudonym': the processor must be given it"
    ) in result.output
    keys.write_text(json.dumps({"gso_pseudonym": "x" * 64}), encoding="utf-8")
    assert check(str(FEDERATION_FILE), "--hash-keys-file", str(keys)).exit_code == 0
