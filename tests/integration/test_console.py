"""The web console on real servers: its login and sessions, the registry's subjects read
with its own registry credentials, a reviewed diff naming the agencies a change reaches, and
the data protection officer's answer about one person from the audit's reader role."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import pytest

from tests.fixtures.console import (
    BASIS,
    GDT_PURPOSE,
    HANOI_PURPOSE,
    OTHER_PERSON,
    PERSON,
    SUBJECT,
    ConsoleRun,
    console_run_fixture,  # noqa: F401
)

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Answer:
    status: int
    location: str
    cookies: list[str]
    text: str


@dataclass
class Browser:
    """Sends what a browser would: the session cookie once it has one, redirects not
    followed so each answer can be looked at."""

    base: str
    cookie: str = ""
    opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(_NoRedirect)
    )

    def send(self, path: str, form: dict[str, str] | None = None) -> Answer:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data)
        if self.cookie:
            request.add_header("Cookie", self.cookie)
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            cookies = response.headers.get_all("Set-Cookie") or []
            for cookie in cookies:
                self.cookie = cookie.split(";", 1)[0]
            text = response.read().decode()
            return Answer(response.status, response.headers.get("Location", ""), cookies, text)

    def log_in(self, name: str, password: str) -> Answer:
        return self.send("/login", {"name": name, "password": password})

    def form_token(self, page: str) -> str:
        return page.split('name="form_token" value="', 1)[1].split('"', 1)[0]


def test_every_page_but_login_needs_a_session_and_a_wrong_password_gets_none(
    console_run: ConsoleRun,
) -> None:
    browser = Browser(console_run.url)
    for path in ("/", "/subjects", f"/subjects/{SUBJECT}", "/disclosures"):
        answer = browser.send(path)
        assert (answer.status, answer.location) == (303, "/login"), path
    assert browser.send("/disclosures", {"personal_id": PERSON}).location == "/login"

    wrong = browser.log_in("reviewer", "not-the-password")
    assert wrong.status == 401 and not wrong.cookies
    assert "Wrong user name or password" in wrong.text
    assert browser.log_in("nobody", console_run.passwords["reviewer"]).status == 401

    browser.cookie = "govsync_console=forged"
    assert browser.send("/subjects").location == "/login"

    login = browser.send("/login")
    assert login.status == 200 and 'type="password"' in login.text


def test_a_reviewer_browses_subjects_and_a_reviewed_diff_naming_who_receives_each_field(
    console_run: ConsoleRun,
) -> None:
    browser = Browser(console_run.url)
    login = browser.log_in("reviewer", console_run.passwords["reviewer"])
    assert (login.status, login.location) == (303, "/subjects")
    (cookie,) = login.cookies
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes

    subjects = browser.send("/subjects")
    assert subjects.status == 200
    assert f'<a href="/subjects/{SUBJECT}">{SUBJECT}</a>' in subjects.text
    assert "<td>1, 2</td>" in subjects.text

    subject = browser.send(f"/subjects/{SUBJECT}").text
    assert "<strong>FULL_TRANSITIVE</strong>" in subject
    assert "<code>personal_id</code>" in subject and "sensitive_personal" in subject
    assert "A name the citizen goes by" in subject  # the newest version's fields

    diff = browser.send(f"/subjects/{SUBJECT}/diff?old=1&new=2")
    assert diff.status == 200
    verdicts = diff.text.split("<h2>Verdict per compatibility level</h2>")[1].split("<h2>")[0]
    assert verdicts.count("accepted") == 7 and "refused" not in verdicts
    assert "classification changed personal -&gt; sensitive_personal" in diff.text
    receivers = diff.text.split("<h2>Who receives each changed field</h2>")[1].split("<h2>")[0]
    assert "Statistics office" in receivers and "receives as its year" in receivers
    assert "Hanoi People" in receivers and "no subscription" in receivers  # nickname: nobody
    assert 'class="added"' in diff.text and 'class="changed"' in diff.text

    assert browser.send(f"/subjects/{SUBJECT}/versions/1").status == 200
    assert browser.send(f"/subjects/{SUBJECT}/versions/9").status == 404
    assert browser.send(f"/subjects/{SUBJECT}/diff?old=1&new=9").status == 404
    assert browser.send("/subjects/no.such-value").status == 404

    refused = browser.send("/disclosures")
    assert refused.status == 403 and "data protection officer" in refused.text
    assert browser.send("/disclosures", {"personal_id": PERSON}).status == 403


def test_logout_ends_the_session_and_needs_the_sessions_form_token(
    console_run: ConsoleRun,
) -> None:
    browser = Browser(console_run.url)
    browser.log_in("reviewer", console_run.passwords["reviewer"])
    page = browser.send("/subjects").text
    assert browser.send("/logout", {"form_token": "forged"}).status == 403
    assert browser.send("/subjects").status == 200
    session = browser.cookie
    logout = browser.send("/logout", {"form_token": browser.form_token(page)})
    assert (logout.status, logout.location) == (303, "/login")
    browser.cookie = session  # the old cookie, replayed
    assert browser.send("/subjects").location == "/login"


def test_the_dpo_sees_one_persons_disclosures_and_no_one_elses(
    console_run: ConsoleRun,
) -> None:
    browser = Browser(console_run.url)
    login = browser.log_in("dpo", console_run.passwords["dpo"])
    assert login.location == "/disclosures"
    form = browser.send("/disclosures")
    assert form.status == 200 and 'id="personal_id"' in form.text
    token = browser.form_token(form.text)

    assert browser.send("/disclosures", {"personal_id": PERSON}).status == 403  # no token
    answer = browser.send("/disclosures", {"personal_id": PERSON, "form_token": token})
    assert answer.status == 200
    hanoi, gdt = console_run.agencies
    table = answer.text.split("<table>", 1)[1]
    assert f"<code>{hanoi}</code>" in table and f"<code>{gdt}</code>" in table
    assert "Quản lý cư trú &lt;trên địa bàn&gt;" in table and GDT_PURPOSE in table
    assert HANOI_PURPOSE not in table  # escaped, never raw
    assert table.count(BASIS) == 2 and "personal_id, full_name" in table
    assert "2026-11-30 08:15:00 +0000" in table and "2 disclosures about" in table
    assert "Khác" not in table  # the other person's disclosure

    other = browser.send("/disclosures", {"personal_id": OTHER_PERSON, "form_token": token})
    assert "Khác" in other.text and GDT_PURPOSE not in other.text
    nobody = browser.send("/disclosures", {"personal_id": "000000000000", "form_token": token})
    assert "No disclosure recorded about 000000000000" in nobody.text
    # the reviewer's pages are the dpo's too
    assert browser.send(f"/subjects/{SUBJECT}").status == 200

    log = console_run.log.read_text(encoding="utf-8")
    assert "dpo read one person's disclosures" in log
    assert PERSON not in log and OTHER_PERSON not in log
