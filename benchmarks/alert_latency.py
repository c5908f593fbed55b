"""Alert latency: from an item appearing in a served feed to its webhook arriving.

    .venv/bin/python benchmarks/alert_latency.py [--repeat 5]

One cycle = one `energywatch run` over the feed (poll → fetch → extract → enrich → store + outbox)
followed by one `alerts send`, as the ingest and alerts DAGs do. Everything is local: a feed and
article server and a webhook receiver on loopback. Reported: the latency (median of the cycles, cold
= worker processes started inside the cycle, forked from this process's fork server, which loads the
extraction stack once, in the first cycle; warm = a pool already running as in a long-lived worker)
and the share of it spent waiting on I/O (wall time minus CPU time of this process and the workers).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ARTICLE = ("NATO said drones attacked the TurkStream gas pipeline compressor station overnight; the operator "
           "reported that supplies to Hungary and Serbia were interrupted after the sabotage of critical energy "
           "infrastructure, and the alliance promised to protect energy routes. ") * 6


def _variant(n: int) -> str:
    """The article with the words of each sentence shuffled: a different story each time (MinHash)."""
    import random

    rng = random.Random(n)
    sentences = []
    for sentence in ARTICLE.split("; "):
        words = sentence.split()
        rng.shuffle(words)
        sentences.append(" ".join(words))
    return ". ".join(sentences)


class _State:
    items: list[str] = []
    arrivals: dict[str, float] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/feed.xml":
            items = "".join(f"<item><title>Story {i}</title><link>{host}/a/{i}</link><guid>{i}</guid></item>"
                            for i in _State.items)
            self._reply(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
                        .encode(), "application/rss+xml")
        else:
            n = self.path.rsplit("/", 1)[-1]
            page = (f"<html><head><title>Pipeline attack {n}</title></head><body><article><h1>Pipeline attack {n}"
                    f"</h1><p>Story number {n} of the benchmark. {_variant(int(n))}</p></article></body></html>")
            self._reply(page.encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802
        import json

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        for story in json.loads(body)["stories"]:
            _State.arrivals[story["title"]] = time.perf_counter()
        self._reply(b"ok", "text/plain")

    def log_message(self, *args: object) -> None:
        pass


def cycle(settings, feed, store, rules, pool, n: int) -> tuple[float, float]:
    """Publish item n, run one ingestion and one delivery; return (latency, io share)."""
    from energywatch.alerts.outbox import deliver
    from energywatch.models import utcnow
    from energywatch.pipeline import run_async

    _State.items.append(str(n))
    appeared = time.perf_counter()
    cpu0 = time.process_time()
    summary = asyncio.run(run_async(settings, [feed], store, pool=pool))
    deliver(store, rules, utcnow())
    cpu = time.process_time() - cpu0
    worker_cpu = sum(summary.stage_seconds.get(k, 0.0) for k in ("extract", "language", "enrich"))
    arrived = _State.arrivals.get(f"Pipeline attack {n}")
    if arrived is None:
        raise SystemExit(f"the webhook for story {n} did not arrive: {summary.failures}")
    latency = arrived - appeared
    return latency, max(0.0, 1 - (cpu + worker_cpu) / latency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from energywatch.alerts.rules import load_rules
    from energywatch.config import Settings
    from energywatch.models import Feed
    from energywatch.pipeline import make_pool
    from energywatch.store.sqlite import SQLiteStore

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        rules_path = Path(tmp) / "alerts.yaml"
        rules_path.write_text(f"channels:\n  hook: {{type: webhook, url: '{base}/hook'}}\n"
                              "rules:\n  - {name: nato-core, labels: [core], organizations: [NATO], channels: [hook]}\n")
        settings = Settings(store=f"sqlite:///{tmp}/l.db", allow_private_addresses=True, alerts_file=rules_path)
        store = SQLiteStore(f"{tmp}/l.db")
        rules = load_rules(rules_path)
        feed = Feed(id="bench", name="Bench", url=f"{base}/feed.xml")
        cold = [cycle(settings, feed, store, rules, None, n) for n in range(args.repeat)]
        pool = make_pool(settings)
        list(pool.map(abs, range(settings.workers)))
        warm = [cycle(settings, feed, store, rules, pool, n) for n in range(100, 100 + args.repeat)]
        pool.shutdown()
        store.close()
    server.shutdown()
    for name, results in (("cold (workers start in the cycle)", cold), ("warm (long-lived workers)", warm)):
        latencies = [r[0] for r in results]
        shares = [r[1] for r in results]
        print(f"{name:36}: median {statistics.median(latencies) * 1000:7.1f} ms  (min {min(latencies) * 1000:.1f}, "
              f"max {max(latencies) * 1000:.1f}); waiting on I/O {statistics.median(shares):.0%}")


if __name__ == "__main__":
    main()
