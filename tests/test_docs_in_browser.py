"""Swagger UI and ReDoc load in a real browser, offline: no request to another host, none failing,
no console error. Headless Chromium from the Debian package (./dev test installs it), driven by Playwright."""

import json
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from playwright.sync_api import sync_playwright

from tests.api_reference import served_api
from tests.live_server import hs256_token

pytestmark = pytest.mark.live

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_api(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageLog:
    """What a page did while it loaded: every request, the failed ones and the console errors."""

    def __init__(self, page):
        self.requests, self.failed, self.console_errors = [], [], []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", lambda request: self.failed.append((request.url, request.failure)))
        page.on("response", self._response)
        page.on(
            "console", lambda message: message.type == "error" and self.console_errors.append(message.text)
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _response(self, response):
        if response.status >= 400:
            self.failed.append((response.url, response.status))


def operation_count(server):
    with urlopen(f"http://127.0.0.1:{server.port}/api/schema/?format=json", timeout=30) as response:
        schema = json.load(response)
    return sum(len(operations) for operations in schema["paths"].values())


def load(browser, server, path, ready_selector):
    page = browser.new_page()
    log = PageLog(page)
    page.goto(f"http://127.0.0.1:{server.port}{path}", wait_until="networkidle")
    page.wait_for_selector(ready_selector, timeout=30_000)
    page.wait_for_load_state("networkidle")
    return page, log


def assert_offline_and_clean(log, server):
    hosts = {urlsplit(url).netloc for url in log.requests if urlsplit(url).scheme in ("http", "https")}
    assert hosts == {f"127.0.0.1:{server.port}"}, log.requests
    assert log.failed == []
    assert log.console_errors == []


def test_swagger_ui_renders_every_operation_offline(browser, server):
    page, log = load(browser, server, "/api/docs/", ".opblock-summary")

    assert page.locator(".opblock-summary").count() == operation_count(server)
    assert page.locator(".opblock-tag").first.inner_text().startswith("Tasks")
    assert "List your tasks" in page.content()
    assert_favicon_served(page, server)
    assert_offline_and_clean(log, server)
    page.close()


def test_swagger_ui_creates_a_task_from_the_example_sent_unedited(browser, server):
    page, log = load(browser, server, "/api/docs/", ".opblock-summary")
    page.click("button.authorize")
    page.fill(".modal-ux input", hs256_token("swagger-user"))
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")
    operation = page.locator("#operations-Tasks-createTask")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()

    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "201"
    assert '"title": "Buy oat milk"' in operation.locator(".live-responses-table").inner_text()
    assert_offline_and_clean(log, server)
    page.close()


def test_redoc_renders_every_operation_offline(browser, server):
    page, log = load(browser, server, "/api/redoc/", "[data-section-id^='operation/']")

    assert page.locator("[data-section-id^='operation/']").count() == operation_count(server)
    assert "Compatibility (Next.js todo spec)" in page.content()
    assert page.locator("img[alt='redocly logo']").evaluate(
        "image => image.complete && image.naturalWidth > 0"
    )
    assert_favicon_served(page, server)
    assert_offline_and_clean(log, server)
    page.close()


def assert_favicon_served(page, server):
    href = page.locator("link[rel~='icon']").first.get_attribute("href")
    status, _, headers = server.request("GET", href)
    assert status == 200, href
    assert headers["Content-Type"].startswith("image/"), href


def test_the_admin_login_loads_offline_with_a_favicon(browser, server):
    page, log = load(browser, server, "/admin/login/", "#id_username")

    assert_favicon_served(page, server)
    assert_offline_and_clean(log, server)
    page.close()
