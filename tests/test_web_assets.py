"""What every page loads breaks no rule of the browser's: htmx adds no inline style the
Content-Security-Policy (style-src 'self') refuses, and the office's icon is served, so a
browser logs neither a CSP violation nor a 404 (found by a review: both on every page)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Browser

# Collects the page's CSP violations from its first script on (htmx runs before a test could look).
RECORD_VIOLATIONS = ("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                     " e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));")


@pytest.mark.parametrize("path", ["/", "/ui/committees", "/ui/sites"])
def test_a_page_breaks_no_content_security_rule(browser: Browser, staff: dict[str, str], path: str) -> None:
    browser.sign_in(staff["supervisor"])
    script = browser.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
        browser.go(path)
        browser.find("main")
        assert browser.driver.execute_script("return typeof htmx") == "object"  # htmx did load and run
        assert browser.driver.execute_script("return htmx.config.includeIndicatorStyles") is False
        assert browser.driver.execute_script("return window.__csp") == []
        indicator = browser.driver.execute_script(
            "const e = document.createElement('span'); e.className = 'htmx-indicator'; document.body.append(e);"
            " return getComputedStyle(e).opacity;")
        assert indicator == "0"  # the indicator's style comes from app.css instead
    finally:
        browser.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


def test_the_icon_is_served_where_browsers_look_and_where_the_pages_name_it(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        for path in ("/favicon.ico", "/static/favicon.svg"):
            icon = client.get(path)
            assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml"), path
        for page in ("/login", "/ui/no-such-page"):
            assert '<link rel="icon" href="/static/favicon.svg"' in client.get(page).text, page
