"""Fixtures: a real PostgreSQL (embedded by default, LIUDONG_TEST_DATABASE_URL if
set), the services on it, a real HTTP server, and an API key per role."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql

from api.app import create_app
from application.database import Database, start_embedded
from application.keys import HUMAN_ROLES
from application.services import Services
from application.settings import Settings
from domain.common import Actor, Role, Stamp
from tests import factories

# The office's clock in tests: 10:00 in Shanghai on 2026-11-25.
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class Clock:
    """A clock tests can set; commands read it through ``Services.clock``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = os.environ.get("LIUDONG_TEST_DATABASE_URL")
    if not url:
        yield start_embedded(tmp_path_factory.mktemp("pg"))
        return
    name = f"liudong_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = url.rsplit("/", 1)[0]
    yield Database(dsn=f"{base}/{name}", embedded=False, location=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# One master key for personal data across the suite, the commands it invokes and the
# processes it starts.
TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
os.environ["LIUDONG_PII_MASTER_KEY"] = TEST_MASTER_KEY


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Reads wait up to 15 s for the views: the suite's processes share the cores with browsers,
    # brokers and PostgreSQL servers, and a projector starved for 5 s is not a failure of the API.
    return Settings(data_dir=tmp_path_factory.mktemp("data"), read_wait_timeout=15.0, pool_size=30,
                    pii_master_key=TEST_MASTER_KEY, rate_limit_per_minute=0)


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(scope="session")
def services(settings: Settings, database: Database, clock: Clock) -> Iterator[Services]:
    svc = Services.open(settings, clock=clock, run_projections=True, database=database)
    factories.AREA_MAKER = lambda prefix: define_area(svc, prefix)
    yield svc
    svc.close()


def define_area(services: Services, prefix: str) -> str:
    """A new street office of the register, for tests that need an area of their own."""
    code = f"t{uuid.uuid4().hex[:10]}"
    services.app.define_area(code=code, name_zh=f"{prefix}{code[-4:]}街道", name_en=f"{prefix} {code}",
                             level="street_office", parent=None, stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))
    return code


@pytest.fixture()
def stamp() -> Stamp:
    return Stamp(Actor("test-caseworker", Role.CASEWORKER), NOW)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """A real uvicorn server on a free loopback port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def base_url(services: Services, settings: Settings) -> Iterator[str]:
    """A real uvicorn server on loopback, serving the app on the test services."""
    with serve_app(create_app(settings, services)) as url:
        yield url


def issue_key(services: Services, user_id: str, role: Role, areas: list[str] | None = None,
              scopes: list[str] | None = None) -> str:
    _, key = services.app.issue_key(user_id=user_id, role=role.value, areas=areas or [], scopes=scopes or [],
                                    stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))
    return key


@pytest.fixture(scope="session")
def keys(services: Services) -> dict[str, str]:
    """One district-wide API key per role; the user id is the role's name prefixed with 'test-'."""
    return {role.value: issue_key(services, f"test-{role.value}", role) for role in HUMAN_ROLES}


class Api:
    """An HTTP client acting as one role."""

    def __init__(self, client: httpx.Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=json, headers=self.headers(kwargs.pop("headers", None)), **kwargs)


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture()
def caseworker(http: httpx.Client, keys: dict[str, str]) -> Api:
    return Api(http, keys["caseworker"])


@pytest.fixture()
def supervisor(http: httpx.Client, keys: dict[str, str]) -> Api:
    return Api(http, keys["supervisor"])


@pytest.fixture()
def as_role(http: httpx.Client, keys: dict[str, str]) -> Any:
    return lambda role: Api(http, keys[role])


@pytest.fixture()
def stored(services: Services) -> Any:
    """Snapshot of what is stored; ``assert stored.unchanged()`` after a refused command."""

    class Snapshot:
        def __init__(self) -> None:
            self.head = services.head()
            self.idempotency = self._count("liudong_idempotency")

        @staticmethod
        def _count(table: str) -> int:
            with services.pool.connection() as conn:
                row = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
            return int(row["n"]) if row else 0

        def unchanged(self) -> bool:
            return services.head() == self.head and self._count("liudong_idempotency") == self.idempotency

    return Snapshot


# Figures measured in this process and not yet reported. They travel on the next test report
# (as user properties), so that the run's end prints them also when xdist runs the tests in
# worker processes.
_FIGURES: list[str] = []
_REPORTED: list[str] = []


@pytest.fixture()
def figures() -> list[str]:
    """Figures a test measured, printed at the end of the run (and kept in tests/artifacts/)."""
    return _FIGURES


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.when == "teardown":
        item.user_properties.extend(("figure", line) for line in _FIGURES)
        _FIGURES.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _REPORTED.extend(str(value) for name, value in report.user_properties if name == "figure")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _REPORTED:
        return
    terminalreporter.section("figures measured by the tests")
    for line in _REPORTED:
        terminalreporter.write_line(line)
    artifacts = Path(__file__).parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "figures.txt").write_text("\n".join(_REPORTED) + "\n")


# The longest modules first: with the tests spread over processes a module at a time
# (`make test`: pytest-xdist, --dist loadfile), one that started last would run on alone.
LONGEST_FIRST = ("test_kafka", "test_fuzz", "test_erasure", "test_processes", "test_web_money",
                 "test_bench_smoke", "test_audit", "test_interleavings", "test_web_cases", "test_web_residents")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


# -- the web application in a real browser ------------------------------------------------------
WEB_PASSWORD = "correct horse battery"
IMPLICIT_WAIT = 3  # seconds find() waits for an element to appear
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def staff(services: Services) -> dict[str, str]:
    """One web account per role (user name ``web-<role>``, password WEB_PASSWORD), and a
    second supervisor for the four-eyes rule (``web-supervisor2``)."""
    accounts = {}
    for role in ("caseworker", "supervisor", "finance", "auditor", "admin"):
        accounts[role] = f"web-{role}"
    accounts["supervisor2"] = "web-supervisor2"
    for key, user in accounts.items():
        role = "supervisor" if key == "supervisor2" else key
        if not any(u["user_id"] == user for u in services.users.list()):
            services.users.create(user_id=user, role=role, areas=[], password=WEB_PASSWORD, created_by="test-admin")
    return accounts


class Browser:
    """Headless Chromium driven by selenium, signed in as one account at a time."""

    def __init__(self, driver: Any, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def sign_in(self, user: str, password: str = WEB_PASSWORD, lang: str = "zh-CN") -> None:
        self.driver.delete_all_cookies()
        self.go(f"/login?lang={lang}")
        self.fill("username", user)
        self.fill("password", password)
        self.submit("sign-in")

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        """The matching elements of the page as it is, at once: the implicit wait would
        spend its 3 s on every check that something is absent."""
        from selenium.webdriver.common.by import By

        self.driver.implicitly_wait(0)
        try:
            return list(self.driver.find_elements(By.CSS_SELECTOR, css))
        finally:
            self.driver.implicitly_wait(IMPLICIT_WAIT)

    def fill(self, name_or_id: str, value: str) -> None:
        element = self.find(f"[name='{name_or_id}'], #{name_or_id}")
        element.clear()
        element.send_keys(value)

    def choose(self, name: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(f"select[name='{name}']")).select_by_value(value)

    def click(self, element_id: str) -> None:
        self.find(f"#{element_id}").click()

    def submit(self, element_id: str) -> None:
        """Click a button that loads a new page, and wait until it has."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        self.click(element_id)

        def replaced(driver: Any) -> bool:
            # Chromium answers a node of the page being replaced with "stale element" or, mid
            # navigation, "node does not belong to the document": both mean the old page is gone.
            try:
                old.is_enabled()
            except WebDriverException:
                return True
            return False

        def loaded(driver: Any) -> bool:
            try:
                return bool(driver.execute_script("return document.readyState") == "complete")
            except WebDriverException:  # still navigating
                return False

        wait = WebDriverWait(self.driver, 15)
        wait.until(replaced)
        wait.until(loaded)

    def text(self) -> str:
        return str(self.find("body").text)

    def lang(self) -> str:
        return str(self.find("html").get_attribute("lang"))

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("the browser journeys need Debian's chromium and chromium-driver (make browser installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--lang=zh-CN", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(IMPLICIT_WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def browser(chromium: Any, base_url: str, staff: dict[str, str]) -> Browser:
    chromium.delete_all_cookies()
    return Browser(chromium, base_url)
