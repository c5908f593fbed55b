"""`energywatch watch` as users run it: a real process against local feed, page and webhook servers;
new items alerted within seconds, kill -9 between store and send, SIGTERM, a reloaded feed list, a
second watcher on the same store, and the Prometheus endpoint."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from conftest import article_html, rss
from energywatch.config import Settings
from energywatch.models import Feed, FeedState
from energywatch.watch import watch_interval

STORY = ("NATO said drones attacked the TurkStream gas pipeline compressor station overnight; the operator "
         "reported that supplies to Hungary and Serbia were interrupted after the sabotage of critical energy "
         "infrastructure, and the alliance promised to protect energy routes. ")


def _variant(n: int) -> str:
    """The story with its words shuffled: another story for the near-duplicate grouping each time."""
    words = (STORY * 3).split()
    random.Random(n).shuffle(words)
    return " ".join(words)


class Site:
    """Feeds, pages and a webhook receiver on one loopback port; the test adds items while it runs."""

    def __init__(self) -> None:
        self.items: dict[str, list[int]] = {"a": [], "b": []}
        self.added: dict[int, float] = {}
        self.alerts: list[tuple[float, list[str]]] = []
        self.feed_gets: list[tuple[float, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path.startswith("/feed/"):
                    name = self.path.rsplit("/", 1)[1]
                    site.feed_gets.append((time.time(), name))
                    items = [{"title": f"Drones hit pipeline {n}", "link": site.url(f"/p/{n}"), "guid": f"g{n}"}
                             for n in site.items[name]]
                    self._send(rss(items), "application/rss+xml")
                elif self.path.startswith("/p/"):
                    n = int(self.path.rsplit("/", 1)[1])
                    self._send(article_html(f"Drones hit pipeline {n}", [_variant(n)] * 2).encode(), "text/html")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                site.alerts.append((time.time(), [s["title"] for s in body["stories"]]))
                self._send(b"ok", "text/plain")

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def add(self, feed: str, n: int) -> None:
        self.items[feed].insert(0, n)
        self.added[n] = time.time()

    def alerted(self) -> list[str]:
        return [title for _, titles in self.alerts for title in titles]


def _setup(tmp_path: Path, site: Site, feeds: tuple[str, ...] = ("a",)) -> dict[str, str]:
    feeds_file = tmp_path / "feeds.yaml"
    _write_feeds(feeds_file, site, feeds)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""
channels:
  hook: {{type: webhook, url: "{site.url('/hook')}"}}
rules:
  - {{name: nato-core, labels: [core], organizations: [NATO], channels: [hook]}}
""", encoding="utf-8")
    return {"ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "ENERGYWATCH_STORE": f"sqlite:///{tmp_path / 'w.db'}",
            "ENERGYWATCH_FEEDS_FILE": str(feeds_file), "ENERGYWATCH_ALERTS_FILE": str(rules),
            "ENERGYWATCH_WORKERS": "1", "ENERGYWATCH_WATCH_MIN_INTERVAL_SECONDS": "5",
            "ENERGYWATCH_WATCH_MAX_INTERVAL_SECONDS": "5", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _write_feeds(path: Path, site: Site, feeds: tuple[str, ...]) -> None:
    path.write_text("feeds:\n" + "".join(f"  - {{id: {f}, name: Feed {f}, url: '{site.url('/feed/' + f)}'}}\n"
                                        for f in feeds), encoding="utf-8")


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "energywatch", "watch", "--log-json", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _stored(env: dict[str, str]) -> set[str]:
    path = env["ENERGYWATCH_STORE"][len("sqlite:///"):]
    if not Path(path).exists():
        return set()
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return {r[0].rsplit("/", 1)[-1] for r in db.execute("SELECT guid FROM documents")}
    except sqlite3.OperationalError:
        return set()


def test_watch_alerts_in_seconds_and_survives_kill_9_between_store_and_send(tmp_path: Path) -> None:
    site = Site()
    env = _setup(tmp_path, site)
    site.add("a", 1)
    first = _start(env)
    try:
        _until(lambda: "Drones hit pipeline 1" in site.alerted(), 60, "the first alert")
        # a new item: found at the next poll (every 5 s here), alerted at once after it is stored
        site.add("a", 2)
        _until(lambda: "Drones hit pipeline 2" in site.alerted(), 30, "the second alert")
        latency = next(t for t, titles in site.alerts if "Drones hit pipeline 2" in titles) - site.added[2]
        assert latency < 5 + 10 + 5  # poll interval + the batch window after the first send + work
        # the third is stored within the batch window after the second's send: held in the outbox. The
        # watcher dies (SIGKILL) with the alert stored and not sent
        site.add("a", 3)
        _until(lambda: "g3" in _stored(env), 30, "the third document stored")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert "Drones hit pipeline 3" not in site.alerted()
    finally:
        if first.poll() is None:
            first.kill()
    second = _start(env)
    try:
        _until(lambda: "Drones hit pipeline 3" in site.alerted(), 60, "the held alert after the restart")
        time.sleep(2)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    assert sorted(site.alerted()) == ["Drones hit pipeline 1", "Drones hit pipeline 2", "Drones hit pipeline 3"]


def test_watch_reloads_its_feed_list_and_shares_polling_with_a_second_watcher(tmp_path: Path) -> None:
    site = Site()
    env = _setup(tmp_path, site)
    site.add("a", 10)
    port = _free_port()
    one, two = _start(env, "--metrics-port", str(port)), _start(env)
    try:
        _until(lambda: "g10" in _stored(env), 60, "the first feed's item")
        site.add("b", 20)
        _write_feeds(Path(env["ENERGYWATCH_FEEDS_FILE"]), site, ("a", "b"))
        _until(lambda: "g20" in _stored(env), 30, "the item of the feed added to the list")
        started = time.time()
        time.sleep(12)
        polls = [t for t, name in site.feed_gets if name == "a" and t >= started]
        # two watchers at a 5-s interval: about one poll every 5 s between them, not two
        assert 1 <= len(polls) <= 4, polls
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "energywatch_polls_total" in metrics and "energywatch_alert_latency_seconds_bucket" in metrics
        status = subprocess.run([sys.executable, "-m", "energywatch", "status", "--json", "--metrics-url",
                                 f"http://127.0.0.1:{port}/metrics"], env=env, capture_output=True, text=True, timeout=60)
        report = json.loads(status.stdout)
        rows = {r["feed"]: r for r in report["feeds"]}
        assert set(rows) == {"a", "b"} and rows["b"]["last_new_at"] is not None
        assert "energywatch_documents_stored_total" in report["watcher"]
    finally:
        for process in (one, two):
            process.send_signal(signal.SIGTERM)
        for process in (one, two):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    log = one.stderr.read() if one.stderr else ""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any("reloaded" in line["message"] for line in lines), log[-2000:]
    assert one.returncode == 0 and two.returncode == 0
    assert sorted(set(site.alerted())) == sorted(site.alerted())  # each story alerted once


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_busy_feeds_are_polled_often_and_quiet_ones_seldom() -> None:
    settings = Settings(watch_min_interval_seconds=60, watch_max_interval_seconds=600)
    feed = Feed(id="f", name="F", url="https://example.org/feed")
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    state = FeedState(feed_id="f", url=feed.url)
    assert watch_interval(feed, state, now, settings) == 600  # nothing new yet: the maximum
    busy = state.model_copy(update={"last_new_at": now - timedelta(minutes=2)})
    assert watch_interval(feed, busy, now, settings) == 60
    quiet = state.model_copy(update={"last_new_at": now - timedelta(minutes=20)})
    assert watch_interval(feed, quiet, now, settings) == 300
    capped = feed.model_copy(update={"interval_minutes": 3})
    assert watch_interval(capped, state, now, settings) == 180
    failing = busy.model_copy(update={"consecutive_failures": 3})
    assert watch_interval(feed, failing, now, settings) >= 3600  # the run's back-off
