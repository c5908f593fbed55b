"""Alert latency of `energywatch watch`: from an item appearing in one of 200 feeds to its webhook arriving.

    .venv/bin/python benchmarks/watch_latency.py [--feeds 200] [--items 120] [--minutes 10] [--idle-minutes 3]
                                                 [--min-interval 60] [--max-interval 300]

A local server publishes 200 RSS feeds (ETag and Last-Modified: an unchanged feed answers 304) and
article pages of realistic size (60–120 kB of navigation, scripts and footer around the story), and
receives the webhooks. `energywatch watch` runs as users run it, in its own process with its worker
pool, on a fresh SQLite store. After a warm-up (the first polls), items appear at random moments
over --minutes: a tenth of the feeds (busy) carry 70% of them, the others share the rest, and every item is a
new NATO pipeline story (a core story the default rule alerts on). Printed: the latency of each
item's alert (p50, p95, max) beside the discovery delay the polling alone explains, the CPU the
watcher and its workers used per minute while nothing changed (--idle-minutes of 304s), and how
many conditional polls a second the same code answers when every feed is unchanged (saturation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STORY = ("NATO said drones attacked the {name} gas pipeline compressor station overnight; the operator reported "
         "that supplies to Hungary and Serbia were interrupted after the sabotage of critical energy "
         "infrastructure; the alliance promised to protect energy routes and its ministers will meet on "
         "Thursday; investigators found debris of the drones near the station")
BOILERPLATE = "".join(f'<li><a href="/section/{i}">Section {i} news and analysis</a></li>' for i in range(400))
SCRIPT = "<script>" + "var tracking = {};" * 2000 + "</script>"


class Site:
    """Feeds, pages and the webhook receiver."""

    def __init__(self, feeds: int) -> None:
        self.feeds: list[list[int]] = [[] for _ in range(feeds)]
        self.versions = [0] * feeds
        self.stamps = [time.time()] * feeds
        self.appeared: dict[int, float] = {}
        self.arrived: dict[int, float] = {}
        self.polls = 0
        self.not_modified = 0
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path.startswith("/feed/"):
                    k = int(self.path.rsplit("/", 1)[1].split(".")[0])
                    etag = f'"v{site.versions[k]}"'
                    with site.lock:
                        site.polls += 1
                        if self.headers.get("If-None-Match") == etag:
                            site.not_modified += 1
                            self.send_response(304)
                            self.send_header("ETag", etag)
                            self.end_headers()
                            return
                    host = f"http://127.0.0.1:{self.server.server_address[1]}"
                    items = "".join(f"<item><title>Pipeline attack {n}</title><link>{host}/a/{n}</link>"
                                    f"<guid>{n}</guid><pubDate>{formatdate(site.appeared.get(n, 0), usegmt=True)}"
                                    "</pubDate></item>" for n in site.feeds[k][:30])
                    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {k}</title>{items}'
                            "</channel></rss>").encode()
                    self._reply(body, "application/rss+xml", {"ETag": etag,
                                                              "Last-Modified": formatdate(site.stamps[k], usegmt=True)})
                elif self.path.startswith("/a/"):
                    n = int(self.path.rsplit("/", 1)[1])
                    rng = random.Random(n)
                    words = STORY.format(name=f"Line-{n}").replace(";", "").split()
                    rng.shuffle(words)
                    paragraphs = "".join(f"<p>{' '.join(words[i:] + words[:i])}.</p>" for i in range(0, 40, 8))
                    page = (f"<!doctype html><html><head><title>Pipeline attack {n}</title>{SCRIPT}</head><body>"
                            f"<nav><ul>{BOILERPLATE[: 20000 + rng.randrange(30000)]}</ul></nav><main><article>"
                            f"<h1>Pipeline attack {n}</h1>{paragraphs}</article></main><footer><ul>{BOILERPLATE}"
                            "</ul></footer></body></html>")
                    self._reply(page.encode(), "text/html; charset=utf-8")
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                now = time.time()
                for story in body["stories"]:
                    n = int(story["title"].rsplit(" ", 1)[1])
                    site.arrived.setdefault(n, now)
                self._reply(b"ok", "text/plain")

            def _reply(self, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 512  # socketserver's 5 refused a poller's 64 connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, feed: int, n: int) -> None:
        with self.lock:
            self.appeared[n] = time.time()
            self.feeds[feed].insert(0, n)
            self.versions[feed] += 1
            self.stamps[feed] = time.time()


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants (the watcher, its fork server and workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:2])
        for child in root.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def saturation(site: Site, feeds: int, rounds: int = 5) -> float:
    """Conditional polls answered 304 per second through the pipeline's own run (all feeds unchanged)."""
    from energywatch.config import Settings
    from energywatch.models import Feed
    from energywatch.pipeline import make_pool, run_async
    from energywatch.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store=f"sqlite:///{tmp}/s.db", allow_private_addresses=True, workers=1,
                            global_concurrency=64, per_host_concurrency=64, alerts_file=Path(tmp) / "none.yaml")
        store = SQLiteStore(f"{tmp}/s.db")
        feed_list = [Feed(id=f"f{k}", name=f"F{k}", url=f"{site.base}/feed/{k}.xml") for k in range(feeds)]
        pool = make_pool(settings)
        asyncio.run(run_async(settings, feed_list, store, pool=pool))  # validators remembered
        t0 = time.perf_counter()
        polled = 0
        for _ in range(rounds):
            polled += asyncio.run(run_async(settings, feed_list, store, pool=pool)).feeds_not_modified
        rate = polled / (time.perf_counter() - t0)
        pool.shutdown()
        store.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=120)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--idle-minutes", type=float, default=3)
    parser.add_argument("--min-interval", type=int, default=60)
    parser.add_argument("--max-interval", type=int, default=300)
    parser.add_argument("--warm-up", type=float, default=90, help="seconds before the first item")
    args = parser.parse_args()
    site = Site(args.feeds)
    rng = random.Random(11)
    busy = list(range(max(1, args.feeds // 10)))
    quiet = list(range(len(busy), args.feeds)) or busy
    plan = sorted((rng.uniform(0, args.minutes * 60), rng.choice(busy) if rng.random() < 0.7 else rng.choice(quiet), n)
                  for n in range(args.items))
    with tempfile.TemporaryDirectory() as tmp:
        feeds_file = Path(tmp) / "feeds.yaml"
        feeds_file.write_text("feeds:\n" + "".join(f"  - {{id: f{k}, name: Feed {k}, url: '{site.base}/feed/{k}.xml'}}\n"
                                                   for k in range(args.feeds)))
        rules = Path(tmp) / "alerts.yaml"
        rules.write_text(f"channels:\n  hook: {{type: webhook, url: '{site.base}/hook'}}\n"
                         "rules:\n  - {name: nato-core, labels: [core], organizations: [NATO], channels: [hook]}\n")
        env = {**os.environ, "ENERGYWATCH_STORE": f"sqlite:///{tmp}/w.db", "ENERGYWATCH_FEEDS_FILE": str(feeds_file),
               "ENERGYWATCH_ALERTS_FILE": str(rules), "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true",
               "ENERGYWATCH_WATCH_MIN_INTERVAL_SECONDS": str(args.min_interval),
               "ENERGYWATCH_WATCH_MAX_INTERVAL_SECONDS": str(args.max_interval)}
        watcher = subprocess.Popen([sys.executable, "-m", "energywatch", "watch"], env=env,
                                   stderr=open(Path(tmp) / "watch.log", "w"))
        try:
            time.sleep(args.warm_up)
            start = time.time()
            for at, feed, n in plan:
                time.sleep(max(0.0, start + at - time.time()))
                site.publish(feed, n)
            deadline = time.time() + args.max_interval + 60
            while len(site.arrived) < len(plan) and time.time() < deadline:
                time.sleep(1)
            # idle: nothing changes; every poll is a 304
            time.sleep(args.max_interval)  # the last items' feeds settle back to their usual interval
            polls0, cpu0, t0 = site.polls, _cpu_seconds(watcher.pid), time.time()
            time.sleep(args.idle_minutes * 60)
            idle_cpu = (_cpu_seconds(watcher.pid) - cpu0) / (time.time() - t0)
            idle_polls = (site.polls - polls0) / (time.time() - t0) * 60
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                watcher.wait(60)
            except subprocess.TimeoutExpired:
                watcher.kill()
        import sqlite3

        with sqlite3.connect(f"{tmp}/w.db") as db:
            # an item grouped into an earlier item's story alerts no second time, by design
            stored, stories = db.execute("SELECT COUNT(*), COUNT(DISTINCT story_id) FROM documents").fetchone()
    latencies = sorted(site.arrived[n] - site.appeared[n] for _, _, n in plan if n in site.arrived)
    missing = [n for _, _, n in plan if n not in site.arrived]
    rate = saturation(site, args.feeds)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    print(f"feeds: {args.feeds} (a tenth busy, with 70% of the items), items: {len(plan)} over {args.minutes:g} min, "
          f"watch intervals {args.min_interval}–{args.max_interval} s, cores: {os.cpu_count()}")
    print(f"alert latency: p50 {pct(0.5):.1f} s, p95 {pct(0.95):.1f} s, max {latencies[-1]:.1f} s, "
          f"mean {statistics.mean(latencies):.1f} s  (targets p50 ≤ 40, p95 ≤ 75); no alert: {len(missing)} "
          f"({stored} documents stored as {stories} stories: an item in an earlier item's story alerts once)")
    print(f"idle: {idle_polls:.0f} polls a minute, all 304; CPU {idle_cpu * 100:.2f}% of one core (target ≤ 3%)")
    print(f"saturation: {rate:.0f} conditional polls a second answered 304 (target ≥ 500)")


if __name__ == "__main__":
    main()
