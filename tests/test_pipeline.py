"""The whole run against a local server and a real SQLite store: idempotence, failures, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import article_html, rss
from energywatch.config import Settings
from energywatch.models import Feed, SearchQuery
from energywatch.enrich.language import load_model
from energywatch.pipeline import make_pool, run
from energywatch.store.sqlite import SQLiteStore

PARAS = [
    "The operator of the gas pipeline said on Tuesday that pressure had dropped sharply after an explosion "
    "near the compressor station, and that supplies to three countries were interrupted for several hours.",
    "Investigators are examining whether the damage was caused by sabotage. Officials from the alliance met "
    "in Brussels to discuss the protection of critical energy infrastructure across the region.",
    "Analysts said the incident showed how exposed Europe remains to attacks on its energy supply routes, "
    "and that undersea cables and pipelines need better surveillance.",
]


def serve_articles(server: HTTPServer, n: int, prefix: str = "a") -> list[dict[str, str]]:
    items = []
    for i in range(n):
        path = f"/{prefix}/{i}"
        server.expect_request(path).respond_with_data(
            article_html(f"Story {prefix}{i} about pipelines", [f"Paragraph for story {prefix}{i}."] + PARAS),
            content_type="text/html; charset=utf-8")
        items.append({"title": f"Story {prefix}{i}", "link": server.url_for(path), "guid": f"{prefix}-{i}",
                      "description": f"Summary of story {prefix}{i}", "pubDate": "Fri, 20 Nov 2026 10:00:00 GMT"})
    return items


def feed(server: HTTPServer, path: str = "/feed", fid: str = "local") -> Feed:
    return Feed(id=fid, name=f"Local {fid}", url=server.url_for(path), language="en", country="GB")


def test_run_stores_documents_and_is_idempotent(settings: Settings, store: SQLiteStore, httpserver: HTTPServer) -> None:
    items = serve_articles(httpserver, 5)
    httpserver.expect_request("/feed").respond_with_data(rss(items), content_type="application/rss+xml",
                                                         headers={"ETag": '"e1"'})
    first = run(settings, [feed(httpserver)], store)
    assert first.documents_stored == 5 and first.items_new == 5 and not first.failures
    doc = store.search(SearchQuery(text="compressor explosion")).hits[0].document
    assert doc.extraction == "page" and "sabotage" in doc.text and doc.language == "en"
    assert doc.source == "Local local" and doc.source_country == "GB" and doc.published_at is not None
    second = run(settings, [feed(httpserver)], store)
    assert second.documents_stored == 0 and second.items_new == 0
    assert store.stats().documents == 5


def test_tracking_variants_and_duplicates_across_feeds(settings, store, httpserver: HTTPServer) -> None:
    items = serve_articles(httpserver, 2)
    variant = dict(items[0], link=items[0]["link"] + "?utm_source=rss&utm_medium=feed", guid="other-guid")
    httpserver.expect_request("/feed").respond_with_data(rss(items), content_type="application/rss+xml")
    httpserver.expect_request("/feed2").respond_with_data(rss([variant, items[1]]), content_type="application/rss+xml")
    summary = run(settings, [feed(httpserver), feed(httpserver, "/feed2", "other")], store)
    assert summary.documents_stored == 2 and summary.items_seen == 4
    assert store.stats().documents == 2


def test_one_bad_feed_and_bad_pages_do_not_stop_others(settings, store, httpserver: HTTPServer) -> None:
    items = serve_articles(httpserver, 2)
    httpserver.expect_request("/pdf").respond_with_data(b"%PDF-1.4 binary", content_type="application/pdf")
    httpserver.expect_request("/404").respond_with_data("nope", status=404)
    items += [
        {"title": "A PDF report on grid security", "link": httpserver.url_for("/pdf"), "description": "The grid report."},
        {"title": "Gone article", "link": httpserver.url_for("/404"), "description": "Summary survives."},
    ]
    httpserver.expect_request("/feed").respond_with_data(rss(items), content_type="application/rss+xml")
    httpserver.expect_request("/broken-feed").respond_with_data("<html>not a feed</html>", content_type="text/html")
    summary = run(settings, [feed(httpserver), feed(httpserver, "/broken-feed", "broken")], store)
    assert summary.documents_stored == 4 and summary.documents_from_summary == 2 and summary.feeds_failed == 1
    reasons = {f.url: f.reason for f in summary.failures}
    assert "Content-Type application/pdf" in reasons[httpserver.url_for("/pdf")]
    assert "HTTP 404" in reasons[httpserver.url_for("/404")]
    assert any(f.feed_id == "broken" and f.stage == "poll" for f in summary.failures)
    pdf = [h.document for h in store.search(SearchQuery(text="grid report")).hits][0]
    assert pdf.extraction == "feed-summary" and any("application/pdf" in w for w in pdf.warnings)


def test_paywall_page_falls_back_to_feed_summary(settings, store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/paywall").respond_with_data(
        "<html><body><div id=app></div><script>render()</script><p>Subscribe to read.</p></body></html>",
        content_type="text/html")
    summary_text = "Ministers agreed a plan to protect LNG terminals from drone attacks, officials said on Friday."
    httpserver.expect_request("/feed").respond_with_data(
        rss([{"title": "LNG terminals", "link": httpserver.url_for("/paywall"), "description": summary_text}]),
        content_type="application/rss+xml")
    run(settings, [feed(httpserver)], store)
    doc = store.search(SearchQuery(text="terminals")).hits[0].document
    assert doc.extraction == "feed-summary" and doc.text == summary_text
    assert any("feed's summary" in w for w in doc.warnings)


def test_transient_page_failure_is_retried_next_run(settings, store, httpserver: HTTPServer) -> None:
    items = serve_articles(httpserver, 1)
    calls = {"n": 0}

    def flaky(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return Response("busy", status=503)
        return Response(article_html("Flaky", PARAS), content_type="text/html")

    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    items.append({"title": "Flaky", "link": httpserver.url_for("/flaky"), "guid": "flaky"})
    httpserver.expect_request("/feed").respond_with_data(rss(items), content_type="application/rss+xml",
                                                         headers={"ETag": '"same"'})
    first = run(settings, [feed(httpserver)], store)
    assert first.documents_stored == 1 and any(f.transient for f in first.failures)
    state = store.get_feed_states()["local"]
    assert state.etag is None and state.body_hash is None  # the next poll must read the feed again
    second = run(settings, [feed(httpserver)], store)
    assert second.documents_stored == 1 and second.items_new == 1
    assert store.stats().documents == 2


def test_due_only_respects_interval(settings, store, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(rss(serve_articles(httpserver, 1)), content_type="application/rss+xml")
    run(settings, [feed(httpserver)], store, due_only=True)
    again = run(settings, [feed(httpserver)], store, due_only=True)
    assert again.feeds_polled == 0 and again.feeds_skipped == 1


def slow_feed_for_the_cli(server: HTTPServer, tmp_path: Path, name: str, n: int,
                          delay: float) -> tuple[dict[str, str], Path]:
    """A feed of n pages that each take `delay` seconds, and the environment of a CLI run over it
    (one page at a time per host); returns the environment and the store's file."""
    def slow_page(request: Request) -> Response:
        time.sleep(delay)
        i = request.path.rsplit("/", 1)[-1]
        return Response(article_html(f"Slow story {i}", [f"Story number {i}."] + PARAS), content_type="text/html")

    items = []
    for i in range(n):
        server.expect_request(f"/{name}/{i}").respond_with_handler(slow_page)
        items.append({"title": f"Slow {i}", "link": server.url_for(f"/{name}/{i}"), "guid": f"{name}-{i}"})
    server.expect_request(f"/{name}.rss").respond_with_data(rss(items), content_type="application/rss+xml",
                                                            headers={"ETag": '"k"'})
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(f"feeds:\n  - id: {name}\n    name: Slow\n    url: {server.url_for(f'/{name}.rss')}\n")
    db = tmp_path / f"{name}.db"
    return {**os.environ, "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "ENERGYWATCH_PER_HOST_CONCURRENCY": "1",
            "ENERGYWATCH_STORE": f"sqlite:///{db}", "ENERGYWATCH_FEEDS_FILE": str(feeds_file)}, db


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path, httpserver: HTTPServer) -> None:
    n = 12
    env, db = slow_feed_for_the_cli(httpserver, tmp_path, "slow", n, 0.4)
    cmd = [sys.executable, "-m", "energywatch", "run", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    stored = 0
    while time.monotonic() < deadline and stored < 2:
        time.sleep(0.2)
        if db.exists():
            probe = SQLiteStore(db)
            stored = probe.stats().documents
            probe.close()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < stored < n, f"the run should have been killed half-way, it had stored {stored} of {n}"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    check = SQLiteStore(db)
    try:
        assert check.stats().documents == n
        ids = [h.document.id for h in check.search(SearchQuery(text="story", limit=100, group_stories=False)).hits]
        assert len(ids) == len(set(ids)) == n
    finally:
        check.close()


def _model_cache() -> tuple[int, int]:
    info = load_model.cache_info()
    return info.misses, info.hits


def test_workers_start_with_the_language_model_the_fork_server_loaded(settings: Settings) -> None:
    pool = make_pool(settings.model_copy(update={"workers": 1}))
    try:
        # the worker inherits the cache of the fork server, whose one miss loaded the model; the worker's
        # initializer then found it there (a worker loading it itself shows one miss and no hit)
        misses, hits = pool.submit(_model_cache).result(timeout=120)
    finally:
        pool.shutdown()
    assert misses == 1 and hits >= 1
