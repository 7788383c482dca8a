"""The web application's sign-in, in a real browser (headless Chromium) and over HTTP:
sessions, CSRF, the lockout after five wrong passwords, languages."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from application.services import Services
from domain.common import Role
from tests.conftest import NOW, WEB_PASSWORD, Browser, Clock

LANGS = ["zh-CN", "en"]


@pytest.mark.parametrize("lang", LANGS)
def test_a_caseworker_signs_in_sees_their_pages_and_signs_out(browser: Browser, staff: dict[str, str],
                                                               lang: str) -> None:
    browser.sign_in(staff["caseworker"], lang=lang)
    assert browser.lang() == lang
    assert staff["caseworker"] in browser.find("#signed-in-as").text
    assert ("待办案件" if lang == "zh-CN" else "Work queue") in browser.text()
    assert "/ui/users" not in browser.driver.page_source  # accounts are for admins
    browser.shot(f"home-caseworker-{lang}")
    browser.submit("sign-out")
    assert "/login" in browser.driver.current_url
    browser.go("/")
    assert "/login" in browser.driver.current_url  # the session is gone


@pytest.mark.parametrize("lang", LANGS)
def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(
    browser: Browser, services: Services, clock: Clock, lang: str
) -> None:
    user = f"web-locked-{lang.lower()}"
    services.users.create(user_id=user, role="caseworker", areas=[], password=WEB_PASSWORD, created_by="test")
    for attempt in range(5):
        browser.sign_in(user, password=f"wrong password {attempt}", lang=lang)
        error = browser.find("#login-error").text
        assert error
    assert ("锁定" if lang == "zh-CN" else "locked") in error
    browser.shot(f"locked-{lang}")
    browser.sign_in(user, lang=lang)  # the right password, while locked
    assert "/login" in browser.driver.current_url and browser.find("#login-error")
    clock.now = NOW + timedelta(minutes=16)
    try:
        browser.sign_in(user, lang=lang)
        assert browser.find("#signed-in-as")
    finally:
        clock.now = NOW


def test_an_unknown_name_is_answered_as_an_account_would_be_and_locks_alike(base_url: str, services: Services,
                                                                          clock: Clock) -> None:
    """The sixth wrong try must not tell whether an account exists: a name that is no
    account is counted and locked as an account is, and unlocks after the same time."""
    services.users.create(user_id="web-real-enum", role="caseworker", areas=[], password=WEB_PASSWORD,
                          created_by="test")

    def tries(name: str) -> list[int]:
        statuses = []
        with httpx.Client(base_url=base_url) as client:
            for attempt in range(6):
                page = client.get("/login")
                token = page.text.split('name="csrf" value="')[1].split('"')[0]
                statuses.append(client.post("/login", data={"username": name, "password": f"wrong {attempt}",
                                                             "csrf": token}).status_code)
        return statuses

    assert tries("web-real-enum") == tries("web-nobody-enum") == [401, 401, 401, 401, 423, 423]
    clock.now = NOW + timedelta(minutes=16)
    try:
        assert tries("web-nobody-enum")[0] == 401
    finally:
        clock.now = NOW


def test_the_cookie_is_httponly_lax_and_every_form_needs_its_csrf_token(base_url: str,
                                                                       staff: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/login")
        assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        forged = client.post("/login", data={"username": staff["caseworker"], "password": WEB_PASSWORD,
                                             "csrf": "forged"})
        assert forged.status_code == 403
        token = forged.text.split('name="csrf" value="')[1].split('"')[0]  # each login form has a fresh token
        signed = client.post("/login", data={"username": staff["caseworker"], "password": WEB_PASSWORD,
                                             "csrf": token, "next": "https://elsewhere.example/"})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        refused = client.post("/logout", data={"csrf": "forged"})
        assert refused.status_code == 403
        assert client.get("/").status_code == 200  # still signed in
        english = client.get("/?lang=en")
        assert '<html lang="en">' in english.text and "Work queue" in english.text
        missing_page = client.get("/ui/nowhere")
        assert missing_page.status_code == 404 and missing_page.headers["content-type"].startswith("text/html")
        missing = client.get("/nowhere")  # not a page: the API's problem document
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_the_cli_creates_accounts_reading_the_password_from_standard_input(services: Services) -> None:
    from typer.testing import CliRunner

    from application import cli as cli_module
    from application.cli import cli

    def open_services() -> Services:
        return services

    original = cli_module.open_services
    cli_module.open_services = open_services
    closing = services.close
    services.close = lambda: None  # type: ignore[method-assign]
    try:
        result = CliRunner().invoke(cli, ["users", "create", "--name", "web-cli-made", "--role", "supervisor",
                                          "--password-stdin"], input="a long enough password\n")
        short = CliRunner().invoke(cli, ["users", "create", "--name", "web-cli-short", "--role", "caseworker",
                                         "--password-stdin"], input="short\n")
    finally:
        cli_module.open_services = original
        services.close = closing  # type: ignore[method-assign]
    assert result.exit_code == 0, result.output
    assert "created supervisor account web-cli-made" in result.output
    assert short.exit_code == 2 and "10 characters" in short.output
    _token, session = services.users.sign_in("web-cli-made", "a long enough password", NOW)
    assert session.user.role.value == "supervisor"


@pytest.mark.parametrize("lang", LANGS)
def test_an_admin_creates_an_account_in_the_app_and_it_signs_in(browser: Browser, staff: dict[str, str],
                                                                  services: Services, lang: str) -> None:
    browser.sign_in(staff["admin"], lang=lang)
    browser.go(f"/ui/users?lang={lang}")
    user = f"web-made-{lang.lower()}"
    browser.fill("username", user)
    browser.choose("role", "finance")
    browser.fill("password", "short")
    browser.submit("create-account")
    assert browser.find("[role=alert]").text  # the rule in words; nothing created
    assert user not in {u["user_id"] for u in services.users.list()}
    assert browser.find("[name='username']").get_attribute("value") == user  # what was typed is kept
    browser.fill("password", WEB_PASSWORD)
    browser.submit("create-account")
    assert user in browser.find("#accounts").text
    browser.shot(f"accounts-{lang}")
    browser.sign_in(user, lang=lang)
    assert browser.find("#signed-in-as").text.startswith(user)


def test_each_signed_in_browser_has_its_own_rate_allowance(services: Services, settings: Any,
                                                           staff: dict[str, str]) -> None:
    """Staff behind one office proxy share an address: the limit counts per session, not per address."""
    from api.app import create_app
    from tests.conftest import serve_app

    tight = settings.model_copy(update={"rate_limit_per_minute": 60, "rate_limit_burst": 6})
    with serve_app(create_app(tight, services)) as url:
        clients = []
        for user in (staff["caseworker"], staff["supervisor"]):
            client = httpx.Client(base_url=url)
            page = client.get("/login")
            token = page.text.split('name="csrf" value="')[1].split('"')[0]
            assert client.post("/login", data={"username": user, "password": WEB_PASSWORD, "csrf": token}
                               ).status_code == 303
            clients.append(client)
        try:
            first = [clients[0].get("/").status_code for _ in range(9)]
            assert 429 in first
            assert clients[1].get("/").status_code == 200  # the other session has its own allowance
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("lang", LANGS)
def test_a_form_holding_control_characters_is_refused_naming_the_field_and_stores_nothing(
        base_url: str, staff: dict[str, str], stored: Any, lang: str) -> None:
    """Found by a review: the pages took a NUL or an escape that the API refuses."""
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post("/login", data={"username": staff["caseworker"], "password": WEB_PASSWORD,
                                             "csrf": token})
        assert signed.status_code == 303
        form = client.get(f"/ui/residents/new?lang={lang}")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        snapshot = stored()
        refused = client.post(f"/ui/residents/new?lang={lang}", data={
            "csrf": csrf, "id_number": "11010519491231002X", "name": "王\x00芳", "phone": "13800138000",
            "hometown": "安徽", "area": "xinqi", "household_relation": "head"})
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
        assert 'data-rule="control_characters" data-field="name"' in refused.text
        assert ("控制字符" if lang == "zh-CN" else "control characters") in refused.text
        broken = client.post(f"/ui/residents/new?lang={lang}", data={  # one-line fields take no line breaks
            "csrf": csrf, "id_number": "11010519491231002X", "name": "王芳", "phone": "13800138000",
            "hometown": "安\n徽", "area": "xinqi", "household_relation": "head"})
        assert broken.status_code == 422 and 'data-field="hometown"' in broken.text
        for address in (f"/ui/residents?q=%00&lang={lang}", f"/ui/residents%1b?lang={lang}"):  # a page's address
            answer = client.get(address)
            assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html"), address
            assert 'data-field="address"' in answer.text
            assert ("\u63a7\u5236\u5b57\u7b26" if lang == "zh-CN" else "control characters") in answer.text
        assert snapshot.unchanged()


def test_every_page_after_a_form_waits_for_the_persons_last_write(
        services: Services, settings: Any, staff: dict[str, str]) -> None:
    """Found by a review: only the page a form led to waited for the write (``?after=``); the
    ledger or a list opened next could show the world before it. The position of the last
    write is kept in a cookie, and a page waits until every view has it, or gives up once."""
    from api.app import create_app
    from tests.conftest import serve_app
    from tests.factories import id_number

    quick = settings.model_copy(update={"read_wait_timeout": 1.0})
    with serve_app(create_app(quick, services)) as url, httpx.Client(base_url=url) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": staff["caseworker"], "password": WEB_PASSWORD,
                                           "csrf": token}).status_code == 303
        form = client.get("/ui/residents/new?lang=en")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        name = "Wrote " + id_number()[-6:]
        posted = client.post("/ui/residents/new?lang=en", data={
            "csrf": csrf, "id_number": id_number(), "name": name, "phone": "13800138000", "hometown": "Anhui",
            "area": "xinqi", "household_relation": "head", "registered_on": "2026-11-20"})
        assert posted.status_code == 303, posted.text
        written = int(posted.headers["location"].split("after=")[1])
        assert client.cookies.get("liudong_wrote") == str(written)
        listed = client.get("/ui/residents", params={"name": name, "lang": "en"})  # no ?after=: the cookie's
        assert listed.status_code == 200 and name in listed.text
        # A position nobody wrote: the page waits once, then shows what is, and forgets it.
        client.cookies.set("liudong_wrote", str(written + 10**9), domain="127.0.0.1", path="/")
        started = time.monotonic()
        assert client.get("/").status_code == 200
        assert 0.9 <= time.monotonic() - started < 5
        assert client.cookies.get("liudong_wrote") is None
        started = time.monotonic()
        assert client.get("/").status_code == 200 and time.monotonic() - started < 0.9


def test_an_admin_of_one_area_makes_accounts_of_that_area_only(base_url: str, services: Services,
                                                               staff: dict[str, str]) -> None:
    """Found by a review: the accounts page took any areas (none: the whole district) and any
    name from an admin bound to one area, and listed every account."""
    from tests.conftest import define_area, issue_key
    from tests.factories import unique

    a, b = define_area(services, "WebA"), define_area(services, "WebB")
    admin, district_holder = unique("web-admin-a"), unique("dw-key")
    services.users.create(user_id=admin, role="admin", areas=[a], password=WEB_PASSWORD, created_by="test")
    issue_key(services, district_holder, Role.SUPERVISOR)
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": admin, "password": WEB_PASSWORD,
                                           "csrf": token}).status_code == 303
        listed = client.get("/ui/users?lang=en")
        csrf = listed.text.split('name="csrf" value="')[1].split('"')[0]
        district_wide = [u["user_id"] for u in services.users.list() if not u["areas"]]
        assert district_wide and not any(f">{name}<" in listed.text for name in district_wide)

        def create(name: str, areas: str) -> httpx.Response:
            return client.post("/ui/users?lang=en", data={"csrf": csrf, "username": name, "role": "caseworker",
                                                           "areas": areas, "password": WEB_PASSWORD})

        for name, areas, status in ((unique("cw-d"), "", 403), (unique("cw-b"), b, 403),
                                    (district_holder, a, 403), ("system", a, 422)):
            refused = create(name, areas)
            assert refused.status_code == status, (name, areas, refused.text[-500:])
            assert 'role="alert"' in refused.text
            assert name not in {u["user_id"] for u in services.users.list()}
        made = unique("cw-a")
        assert create(made, a).status_code == 303
        assert made in client.get("/ui/users?lang=en").text


def test_made_up_session_cookies_count_against_the_address_as_refused_keys_do(
        services: Services, settings: Any, staff: dict[str, str]) -> None:
    """Found by a review: each made-up session cookie had an allowance of its own and was never
    counted as refused, so one address could try cookies without end."""
    from api.app import create_app
    from tests.conftest import serve_app

    tight = settings.model_copy(update={"rate_limit_per_minute": 60, "rate_limit_burst": 3})
    with serve_app(create_app(tight, services)) as url, httpx.Client(base_url=url) as client:
        answers = [client.get("/ui/residents", cookies={"liudong_session": secrets.token_urlsafe(32)}).status_code
                   for _ in range(6)]
        assert answers[:3] == [303, 303, 303] and answers[-1] == 429, answers
        assert client.get("/healthz").status_code == 200  # the address without a credential is not refused


def test_a_form_posted_twice_with_its_token_stores_its_command_once(
        base_url: str, staff: dict[str, str], stored: Any) -> None:
    """Found by a review: a double click on the new case form logged two identical cases. Each
    form carries a one-time token; the second post is answered as the first, storing nothing."""
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        assert client.post("/login", data={"username": staff["caseworker"], "password": WEB_PASSWORD,
                                           "csrf": token}).status_code == 303
        form = client.get("/ui/cases/new").text
        csrf = form.split('name="csrf" value="')[1].split('"')[0]
        once = form.split('name="form_token" value="')[1].split('"')[0]
        body = {"csrf": csrf, "form_token": once, "category": "public_order", "area": "xinqi",
                "description": "noise at night", "priority": "normal", "occurred_on": "2026-11-20",
                "party_name_1": "Zhou", "party_kind_1": "other"}
        first = client.post("/ui/cases/new", data=body)
        assert first.status_code == 303, first.text[:2000]
        snapshot = stored()
        second = client.post("/ui/cases/new", data=body)
        assert second.status_code == 303 and second.headers["location"] == first.headers["location"]
        assert snapshot.unchanged()
        another = client.post("/ui/cases/new", data={**body, "form_token": secrets.token_hex(16)})
        assert another.status_code == 303 and another.headers["location"] != first.headers["location"]


def test_a_refused_account_says_why_beside_its_field_in_chinese_and_stores_nothing(
        base_url: str, services: Services, staff: dict[str, str]) -> None:
    """Found by a review: a user name taken and an unknown area showed only in the banner, and in
    zh-CN a password too long, an unknown role and a role that does not sign in read in English."""
    from tests.factories import unique
    from tests.test_web_sites import Html, Staff

    admin = Staff(base_url, staff["admin"])
    fresh = unique("cw-new")
    typed = {"username": fresh, "role": "caseworker", "areas": "", "password": WEB_PASSWORD}
    for changed, field, rule, words in (
            ({"username": staff["caseworker"]}, "username", "user_exists",
             "\u8be5\u7528\u6237\u540d\u5df2\u5b58\u5728"),  # 该用户名已存在
            ({"areas": "nowhere-at-all"}, "areas", "unknown_area", "\u6ca1\u6709\u8fd9\u4e2a\u5730\u533a"),
            ({"role": ""}, "role", "role_unknown", "\u8bf7\u4ece\u5217\u8868\u4e2d\u9009\u62e9\u89d2\u8272"),
            ({"role": "api_consumer"}, "role", "role_not_for_web",
             "\u8be5\u89d2\u8272\u4e0d\u767b\u5f55\u7f51\u9875\u7cfb\u7edf"),
            ({"password": "x" * 201}, "password", "password_too_long",
             "\u5bc6\u7801\u6700\u591a 200 \u4e2a\u5b57\u7b26")):
        before = {u["user_id"] for u in services.users.list()}
        refused = admin.post("/ui/users?lang=zh-CN", {**typed, **changed})
        assert refused.status_code == 422, (rule, refused.status_code)
        page = Html(refused.text)
        assert page.problems and page.problems[0][0] == rule, (rule, page.problems)
        assert words in page.errors.get(field, ""), (rule, page.errors)
        assert not any(c.isascii() and c.isalpha() for c in page.errors[field].replace("api_consumer", "")), (
            rule, page.errors[field])  # in Chinese, no English left
        assert page.by_id[f"f-{field}"].get("aria-invalid") == "true" and not page.untied_errors(), rule
        assert {u["user_id"] for u in services.users.list()} == before
    admin.client.close()


def test_an_admin_disables_an_account_its_session_ends_and_it_is_enabled_again(
        base_url: str, services: Services, staff: dict[str, str]) -> None:
    """Found by a review: nothing disabled an account, so a leaver kept it and a live session."""
    from tests.factories import unique
    from tests.test_web_sites import Staff

    leaver = unique("cw-leaver")
    services.users.create(user_id=leaver, role="caseworker", areas=[], password=WEB_PASSWORD, created_by="test")
    theirs = Staff(base_url, leaver)
    assert theirs.client.get("/ui/cases").status_code == 200
    admin = Staff(base_url, staff["admin"])
    disabled = admin.post(f"/ui/users/{leaver}/disable?lang=en", {"confirm": "yes"})
    assert disabled.status_code == 303, disabled.text
    assert "Account disabled" in admin.client.get(disabled.headers["location"]).text
    assert theirs.client.get("/ui/cases").status_code != 200 or "login" in str(theirs.client.get("/ui/cases").url)
    signed = theirs.client.post("/login", data={"username": leaver, "password": WEB_PASSWORD,
                                                "csrf": theirs.client.get("/login").text.split(
                                                    'name="csrf" value="')[1].split('"')[0]})
    assert signed.status_code != 303
    assert admin.post(f"/ui/users/{staff['admin']}/disable?lang=en", {}).status_code == 409  # not oneself
    listed = admin.client.get("/ui/users?lang=en").text  # and no button offers it
    assert f'id="disable-{staff["admin"]}"' not in listed and f'id="enable-{leaver}"' in listed
    assert admin.post("/ui/users/nobody-at-all/disable?lang=en", {}).status_code == 404
    assert admin.post(f"/ui/users/{leaver}/enable?lang=en", {}).status_code == 303
    assert Staff(base_url, leaver).client.get("/ui/cases").status_code == 200
