"""Bounded in time and memory: caps on text and entries, back-off for failing feeds, workers that die."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import article_html, rss
from energywatch.config import Settings
from energywatch.models import Feed, FeedState, utcnow
from energywatch.pipeline import make_pool, run, run_async
from energywatch.schedule import MAX_BACKOFF, is_due, poll_interval
from energywatch.store.sqlite import SQLiteStore
from test_airflow.cluster import session_pids
from test_pipeline import serve_articles, slow_feed_for_the_cli


def test_a_worker_killed_mid_extraction_costs_one_retry_not_the_run(settings: Settings, store: SQLiteStore,
                                                                   httpserver: HTTPServer) -> None:
    served = threading.Event()
    # a long page: long enough to extract to kill its worker in the middle
    big = article_html("A very long report", [f"Paragraph {i} on gas transit, storage and the grid. " * 30
                                               for i in range(4000)])  # 6 MB, ~0.6 s

    def slow_page(request: Request) -> Response:
        served.set()
        return Response(big, content_type="text/html; charset=utf-8")

    httpserver.expect_request("/big").respond_with_handler(slow_page)
    items = serve_articles(httpserver, 3, prefix="small")
    items.append({"title": "Big", "link": httpserver.url_for("/big"), "guid": "big"})
    httpserver.expect_request("/bigfeed").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = [Feed(id="big", name="Big", url=httpserver.url_for("/bigfeed"), language="en")]
    pool = make_pool(settings)

    def killer() -> None:
        served.wait(30)
        time.sleep(0.15)
        for pid in list(pool._processes):  # every worker: the one extracting the long page among them
            os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        summary = asyncio.run(run_async(settings, feeds, store, pool=pool))
    finally:
        thread.join()
        pool.shutdown(wait=True, cancel_futures=True)
    assert summary.worker_restarts == 1, summary.failures
    assert summary.documents_stored == 4 and not summary.failures


def test_text_and_entries_are_capped(settings: Settings, store: SQLiteStore, httpserver: HTTPServer) -> None:
    capped = settings.model_copy(update={"max_text_chars": 5000, "max_items_per_feed": 3})
    long_page = article_html("Long", [f"Paragraph {i} about the pipeline and the compressor station." * 4
                                      for i in range(200)])
    httpserver.expect_request("/long").respond_with_data(long_page, content_type="text/html")
    items = [{"title": "Long", "link": httpserver.url_for("/long"), "guid": "long"}]
    items += serve_articles(httpserver, 5, prefix="many")
    httpserver.expect_request("/capped.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    summary = run(capped, [Feed(id="capped", name="Capped", url=httpserver.url_for("/capped.rss"))], store)
    assert summary.documents_stored == 3
    assert summary.items_dropped == {"over the cap of 3 entries per feed": 3}
    long = next(d for d in store.iter_documents() if d.title == "Long")
    assert 2500 <= len(long.text) <= 5000 and long.text.endswith(".")
    assert any("text cut at" in w and "max_text_chars" in w for w in long.warnings)


def test_failing_feeds_back_off_up_to_a_day() -> None:
    feed = Feed(id="f", name="F", url="http://x.example/feed", interval_minutes=10)
    now = utcnow()
    healthy = FeedState(feed_id="f", url=feed.url, last_polled_at=now - timedelta(minutes=11))
    assert is_due(feed, healthy, now, 10)
    failing = healthy.model_copy(update={"consecutive_failures": 3})
    assert poll_interval(feed, failing, 10) == timedelta(minutes=80) and not is_due(feed, failing, now, 10)
    dead = healthy.model_copy(update={"consecutive_failures": 400, "last_polled_at": now - timedelta(hours=23)})
    assert poll_interval(feed, dead, 10) == MAX_BACKOFF and not is_due(feed, dead, now, 10)
    assert is_due(feed, dead.model_copy(update={"last_polled_at": now - timedelta(days=1, minutes=1)}), now, 10)


def test_a_failing_feed_is_polled_less_often(settings: Settings, store: SQLiteStore, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/dead.rss").respond_with_data("gone away", status=404)
    feeds = [Feed(id="dead", name="Dead", url=httpserver.url_for("/dead.rss"), interval_minutes=1)]
    assert run(settings, feeds, store).feeds_failed == 1
    state = store.get_feed_states()["dead"]
    store.save_feed_states([state.model_copy(update={"last_polled_at": utcnow() - timedelta(seconds=90)})])
    # its interval is 1 minute, 90 s have passed, but one failure doubles the wait: not due yet
    assert run(settings, feeds, store, due_only=True).feeds_skipped == 1
    assert len([r for r, _ in httpserver.log if r.path == "/dead.rss"]) == 1


def test_a_run_killed_with_sigkill_leaves_no_worker_behind(tmp_path, httpserver: HTTPServer) -> None:
    env, _ = slow_feed_for_the_cli(httpserver, tmp_path, "orphan", 20, 1.0)
    proc = subprocess.Popen([sys.executable, "-m", "energywatch", "run", "--json"], env={**env, "ENERGYWATCH_WORKERS": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # the run, its fork server and two workers
        while len(session_pids(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(session_pids(proc.pid)) >= 4, "the run never started its workers"
        os.kill(proc.pid, signal.SIGKILL)  # the run alone, as an OOM killer or a time-out would
        proc.wait()
        deadline = time.monotonic() + 15
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not session_pids(proc.pid), "the fork server or its workers outlived the run"
    finally:
        for pid in session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_ends_a_run_cleanly_with_its_summary(tmp_path, httpserver: HTTPServer) -> None:
    n = 30
    env, _ = slow_feed_for_the_cli(httpserver, tmp_path, "term", n, 0.5)
    cmd = [sys.executable, "-m", "energywatch", "run", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len([r for r, _ in httpserver.log if r.path.startswith("/term/")]) < 4:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, errors = proc.communicate(timeout=20)
    assert proc.returncode == 1, errors
    summary = json.loads(out)
    assert summary["aborted"].startswith("stopped by a signal") and 0 < summary["documents_stored"] < n
    assert "SIGTERM" in errors.decode()
    deadline = time.monotonic() + 10
    while session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not session_pids(proc.pid)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents_stored"] == n - summary["documents_stored"]


def test_a_run_deadline_stores_what_is_done_and_the_next_run_finishes(settings: Settings, store: SQLiteStore,
                                                                       httpserver: HTTPServer) -> None:
    """The feed answers 304 to its own ETag: entries a stopped run left must not be lost to a 304."""
    current = {"etag": '"v1"', "items": serve_articles(httpserver, 2, prefix="early")}

    def feed_body(request: Request) -> Response:
        if request.headers.get("If-None-Match") == current["etag"]:
            return Response(status=304)
        return Response(rss(current["items"]), content_type="application/rss+xml", headers={"ETag": current["etag"]})

    def slow(request: Request) -> Response:
        time.sleep(0.7)
        return Response(article_html("Slow", ["A long story about the LNG terminal. " * 20]), content_type="text/html")

    httpserver.expect_request("/deadline.rss").respond_with_handler(feed_body)
    feeds = [Feed(id="deadline", name="Deadline", url=httpserver.url_for("/deadline.rss"))]
    assert run(settings, feeds, store).documents_stored == 2
    for i in range(8):
        httpserver.expect_request(f"/late/{i}").respond_with_handler(slow)
        current["items"] = [*current["items"], {"title": f"Late {i}", "link": httpserver.url_for(f"/late/{i}"),
                                                "guid": f"late-{i}"}]
    current["etag"] = '"v2"'
    hurried = settings.model_copy(update={"run_deadline_seconds": 2.0, "per_host_concurrency": 1})
    first = run(hurried, feeds, store)
    assert first.aborted and first.aborted.startswith("the run deadline of 2 s") and first.documents_stored < 8
    second = run(settings, feeds, store)
    assert first.documents_stored + second.documents_stored == 8 and not second.aborted
    assert store.stats().documents == 10


class SlowWritingStore(SQLiteStore):
    """A real SQLite store whose writes take a while and tell when they begin."""

    writing: threading.Event

    def put_documents(self, docs, alerts=()):  # type: ignore[no-untyped-def]
        self.writing.set()
        time.sleep(0.5)
        return super().put_documents(docs, alerts)


def test_a_stop_during_a_write_counts_what_the_write_stored(settings: Settings, httpserver: HTTPServer,
                                                              tmp_path) -> None:
    """A signal lands while a batch is being written: the write ends, and the summary counts it."""
    store = SlowWritingStore(tmp_path / "slow.db")
    store.writing = threading.Event()
    items = serve_articles(httpserver, 3, prefix="mid")
    httpserver.expect_request("/mid.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = [Feed(id="mid", name="Mid", url=httpserver.url_for("/mid.rss"))]

    async def stopped_mid_write() -> int:
        stop = asyncio.Event()
        running = asyncio.ensure_future(run_async(settings, feeds, store, stop=stop))
        await asyncio.to_thread(store.writing.wait, 30)
        stop.set()
        return (await running).documents_stored

    counted = asyncio.run(stopped_mid_write())
    assert counted == store.stats().documents > 0
    assert run(settings, feeds, store).documents_stored == 3 - counted
    store.close()


def test_two_runs_at_once_fetch_each_page_once(tmp_path, httpserver: HTTPServer) -> None:
    n = 6
    env, db = slow_feed_for_the_cli(httpserver, tmp_path, "twice", n, 0.3)
    cmd = [sys.executable, "-m", "energywatch", "run", "--json"]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    summaries = []
    for proc in runs:
        out, errors = proc.communicate(timeout=120)
        assert proc.returncode == 0, errors
        summaries.append(json.loads(out))
    pages = [r.path for r, _ in httpserver.log if r.path.startswith("/twice/")]
    assert sorted(pages) == sorted(f"/twice/{i}" for i in range(n))  # every page fetched once
    assert sorted(s["feeds_busy"] for s in summaries) == [0, 1]  # the second run found the feed held
    assert sum(s["documents_stored"] for s in summaries) == n
    store = SQLiteStore(db)
    assert store.stats().documents == n
    assert store.claim_feeds(["twice"], "after", utcnow() + timedelta(minutes=1), utcnow()) == {"twice"}  # released
    store.close()


def test_a_page_failing_run_after_run_is_given_up_for_the_feed_summary(settings: Settings, store: SQLiteStore,
                                                                       httpserver: HTTPServer) -> None:
    from energywatch.pipeline import MAX_PAGE_ATTEMPTS

    httpserver.expect_request("/down/page").respond_with_data("busy", status=503)
    items = serve_articles(httpserver, 1, prefix="up")
    items.append({"title": "Down page", "link": httpserver.url_for("/down/page"), "guid": "down",
                  "description": "The feed's summary of the story on the compressor station."})
    httpserver.expect_request("/down.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = [Feed(id="down", name="Down", url=httpserver.url_for("/down.rss"))]
    stored = [run(settings, feeds, store).documents_stored for _ in range(MAX_PAGE_ATTEMPTS + 2)]
    assert stored == [1] + [0] * (MAX_PAGE_ATTEMPTS - 1) + [1, 0]  # the summary after the 5th failure
    gets = [r for r, _ in httpserver.log if r.path == "/down/page"]
    assert len(gets) == MAX_PAGE_ATTEMPTS  # and never fetched again meanwhile
    down = next(d for d in store.iter_documents() if d.title == "Down page")
    assert down.extraction == "feed-summary" and "compressor station" in down.text
    assert any("failed in 5 runs in a row" in w for w in down.warnings)
    assert store.get_feed_states()["down"].page_attempts == {}
