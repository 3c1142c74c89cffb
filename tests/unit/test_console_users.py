"""The console's login: salted password hashes, the users file, and sessions that end."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.console.sessions import Sessions
from sync.console.users import (
    ConsoleUser,
    ConsoleUsers,
    Role,
    UsersFileError,
    hash_password,
    password_matches,
    read_users,
    user_line,
)


def test_a_hash_is_salted_and_checks_only_its_password() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second  # a fresh salt each time
    assert "s3cret" not in first and ":" not in first
    assert password_matches("s3cret", first) and password_matches("s3cret", second)
    assert not password_matches("s3cret ", first)
    assert not password_matches("", first)


def test_a_users_file_made_by_user_line_authenticates_by_role(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(
        "# console users\n"
        + user_line("lan", "review-pw", Role.REVIEWER)
        + "\n"
        + user_line("minh", "dpo:pw", Role.DPO)
    )
    users = read_users(path)
    lan = users.authenticate("lan", "review-pw")
    assert lan is not None and lan.role is Role.REVIEWER
    minh = users.authenticate("minh", "dpo:pw")
    assert minh is not None and minh.role is Role.DPO
    assert users.authenticate("lan", "dpo:pw") is None
    assert users.authenticate("nobody", "review-pw") is None
    assert "scrypt" not in repr(lan)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no users"),
        ("lan:plain-password:reviewer\n", "line 1: the password is not a scrypt hash"),
        ("lan:{hash}:admin\n", "line 1: role 'admin' is not one of reviewer, dpo"),
        ("lan:{hash}\n", "line 1: expected name:hash:role"),
        ("lan:{hash}:dpo\nlan:{hash}:reviewer\n", "line 2: user 'lan' appears twice"),
    ],
)
def test_a_users_file_that_cannot_be_used_says_which_line(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "users"
    secret_hash = hash_password("pw")
    path.write_text(text.format(hash=secret_hash))
    with pytest.raises(UsersFileError, match=reason) as caught:
        read_users(path)
    assert secret_hash not in str(caught.value)


def test_a_user_name_with_a_colon_is_refused() -> None:
    with pytest.raises(UsersFileError):
        user_line("a:b", "pw", Role.DPO)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_when_idle_too_long_after_their_lifetime_and_at_logout() -> None:
    clock = Clock()
    sessions = Sessions(idle=60, lifetime=300, clock=clock)
    user = ConsoleUser("minh", hash_password("pw"), Role.DPO)
    token = sessions.start(user)
    session = sessions.get(token)
    assert session is not None and (session.user, session.role) == ("minh", Role.DPO)
    assert sessions.get("forged") is None and sessions.get(None) is None

    for _ in range(5):  # kept alive by use, up to its lifetime
        clock.now += 59
        assert sessions.get(token) is not None
    clock.now += 10  # 305 s after login
    assert sessions.get(token) is None

    idle = sessions.start(user)
    clock.now += 61
    assert sessions.get(idle) is None

    ended = sessions.start(user)
    sessions.end(ended)
    assert sessions.get(ended) is None


def test_a_form_token_is_the_sessions_own() -> None:
    sessions = Sessions()
    users = ConsoleUsers.of([ConsoleUser("lan", hash_password("pw"), Role.REVIEWER)])
    lan = users.by_name["lan"]
    one, other = sessions.get(sessions.start(lan)), sessions.get(sessions.start(lan))
    assert one is not None and other is not None
    assert one.form_token_matches(one.form_token)
    assert not one.form_token_matches(other.form_token)
    assert not one.form_token_matches("")


def test_the_embedded_stacks_console_users_keep_their_passwords_and_store_only_hashes(
    tmp_path: Path,
) -> None:
    from sync.stack.console_users import prepare_console_users

    files = prepare_console_users(tmp_path / "console")
    passwords = {u: files.password_file(u).read_text().strip() for u in ("reviewer", "dpo")}
    assert files.password_file("dpo").stat().st_mode & 0o777 == 0o600
    assert files.users_file.stat().st_mode & 0o777 == 0o600
    again = prepare_console_users(tmp_path / "console")  # a restart on the same directory
    assert {u: again.password_file(u).read_text().strip() for u in passwords} == passwords
    text = again.users_file.read_text()
    assert not any(p in text for p in passwords.values())
    users = read_users(again.users_file)
    dpo = users.authenticate("dpo", passwords["dpo"])
    reviewer = users.authenticate("reviewer", passwords["reviewer"])
    assert dpo is not None and dpo.role is Role.DPO
    assert reviewer is not None and reviewer.role is Role.REVIEWER
    assert users.authenticate("dpo", passwords["reviewer"]) is None
