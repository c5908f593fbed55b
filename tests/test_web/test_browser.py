"""The UI in a real headless Chromium (Debian's, driven by Playwright): search, article, RTL, XSS."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SHARED
from energywatch.config import Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (make test installs it: apt-get install chromium)"),
    pytest.mark.skipif(not (SHARED / "seeds").exists(), reason="../shared/seeds is absent"),
]


@pytest.fixture(scope="module", params=["sqlite", "elasticsearch"])
def base_url(request: pytest.FixtureRequest, filled_store: Path, filled_es_url: str) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread, over each kind of store.

    Both stores are named here, not looked up lazily: session fixtures are made before the browser's
    event loop starts, and the pipeline that fills them runs its own."""
    import uvicorn

    from energywatch.web.app import create_app

    store_url = f"sqlite:///{filled_store}" if request.param == "sqlite" else filled_es_url

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(store=store_url)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    yield tab
    context.close()


def test_search_inflected_russian_then_open_with_evidence(page, base_url: str) -> None:
    import httpx

    analyzers = httpx.get(base_url + "/api/stats", timeout=30).json().get("analyzers") or {}
    # an Elasticsearch without a Russian analyzer matches the word as the page writes it
    stemmed = analyzers.get("ru") != "standard"
    page.goto(base_url + "/")
    page.fill("input[name=q]", "энергетическая безопасность" if stemmed else "энергетической безопасности")
    page.click("form.search button[type=submit]")
    first = page.locator("ol.hits li.hit").first
    assert "НАТО" in first.locator("a.title").inner_text()
    assert first.locator("p.snippet mark").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / ("search.png" if not analyzers else "search-elasticsearch.png")),
                    full_page=True)
    first.locator("a.title").click()
    page.wait_for_selector("article.document")
    assert page.locator(".body mark.evidence").count() >= 1
    assert "NATO" in page.locator("dl.entities").inner_text()


def test_arabic_filter_renders_right_to_left(page, base_url: str) -> None:
    page.goto(base_url + "/?lang=ar")
    title = page.locator("ol.hits li.hit a.title").first
    assert "الناتو" in title.inner_text()
    assert title.evaluate("el => getComputedStyle(el).direction") == "rtl"
    snippet = page.locator("ol.hits li.hit p.snippet").first
    assert snippet.evaluate("el => getComputedStyle(el).direction") == "rtl"


def test_hostile_title_shows_as_text_and_runs_nothing(page, base_url: str) -> None:
    page.goto(base_url + "/?q=pipeline&all_copies=true")
    titles = page.locator("ol.hits a.title").all_inner_texts()
    assert "<img src=x onerror=alert(1)>" in titles
    hostile = page.locator("ol.hits a.title", has_text="<img src=x").first
    hostile.click()
    page.wait_for_selector("article.document")
    assert page.locator("h1").inner_text() == "<img src=x onerror=alert(1)>"
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_api_docs_render_under_the_csp(page, base_url: str) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(base_url + "/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert "/api/search" in page.locator(".swagger-ui").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_save_a_search_follow_an_entity_and_read_the_feeds(page, base_url: str) -> None:
    """The workbench in a real browser: the save form posts (same origin), entities lead to their page."""
    page.goto(base_url + "/?q=pipeline&label=core")
    page.fill("form.save input[name=name]", "pipes-core")
    page.click("form.save button[type=submit]")
    page.wait_for_load_state()
    assert "/saved?kept=pipes-core" in page.url, page.content()[:2000]  # Chromium's own Origin and Sec-Fetch-Site
    row = page.locator("table.saved tbody tr", has_text="pipes-core")
    assert "pipeline" in row.inner_text() and "label: core" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "saved.png"), full_page=True)
    row.locator("a").first.click()  # runs the saved search again
    page.wait_for_selector("ol.hits li.hit")
    assert page.locator("form.search input[name=q]").input_value() == "pipeline"
    page.locator("ol.hits a.title").first.click()
    page.wait_for_selector("article.document")
    page.locator("dl.entities a[href='/entity/org/NATO']").first.click()
    page.wait_for_selector("svg.timeline")
    assert "organisation" in page.locator("h1").inner_text() and page.locator("ol.hits li.hit").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "entity.png"), full_page=True)
    page.goto(base_url + "/feeds")
    assert "UTC" in page.locator("table.feeds").inner_text()
    page.screenshot(path=str(ARTIFACTS / "feeds.png"), full_page=True)
    page.goto(base_url + "/saved")
    page.locator("table.saved tr", has_text="pipes-core").locator("button").click()
    page.wait_for_url("**/saved")
    assert page.locator("table.saved", has_text="pipes-core").count() == 0
