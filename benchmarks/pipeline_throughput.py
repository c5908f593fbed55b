"""Pipeline throughput against the extraction ceiling, measured in one run on the shared corpus.

    .venv/bin/python benchmarks/pipeline_throughput.py [--limit N] [--workers N]

(a) ceiling: trafilatura over every page on all cores, pages already in memory, no I/O;
(b) the full pipeline (poll → fetch → extract → language → enrich → store) against a local HTTP
server serving the same pages under generated RSS feeds, into a fresh SQLite store.
The pages are split into rounds and (a) and (b) alternate round by round: the speed of these
virtual machines drifts by ±15% over minutes, and measuring all of (a) and then all of (b) put that
drift into the ratio. Prints articles per second for both, their ratio, CPU per article, the
per-stage breakdown and peak memory (PSS of the pipeline's process, its fork server and workers, sampled; the
server and the ceiling run in processes of their own). Needs ../shared/corpus (or ENERGYWATCH_SHARED).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

SHARED = Path(os.environ.get("ENERGYWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def load_pages(limit: int | None) -> dict[str, bytes]:
    """Every page of aeb and trafilatura-eval, by a URL path."""
    pages: dict[str, bytes] = {}
    for corpus in ("aeb", "trafilatura-eval"):
        folder = SHARED / "corpus" / corpus / "html"
        if not folder.is_dir():
            sys.exit(f"{folder} is missing: this benchmark needs ../shared/corpus (or ENERGYWATCH_SHARED)")
        for path in sorted(folder.glob("*.html.gz")):
            pages[f"/{corpus}/{path.name[:-8]}"] = gzip.decompress(path.read_bytes())
    items = sorted(pages.items())
    return dict(items[:limit] if limit else items)


def _ceiling_bytes(job: tuple[bytes, bool]) -> int:
    """trafilatura as most people call it: bytes in, its own encoding detection, fast mode, otherwise its defaults."""
    import trafilatura

    html = job[0]
    doc = trafilatura.bare_extraction(html, with_metadata=True, fast=True, include_comments=False,
                                      include_tables=True)
    return len(doc.text or "") if doc else 0


# Real feeds date most items (781 of the 887 items in ../shared/corpus/feeds, 88%), and a dated item
# spares the extraction htmldate's extensive search; the generated feeds date 7 items in 8, and the
# ceiling's call gets the same date for the same page, so that it stays exactly the workers' call.
FEED_DATE = "Mon, 02 Nov 2026 08:00:00 GMT"


def is_dated(index: int) -> bool:
    """Whether the page at this position (in load_pages order) has a date in its feed."""
    return index % 8 != 7


def _ceiling_same_call(job: tuple[bytes, bool]) -> int:
    """Exactly the extraction the pipeline's workers run (our decoding, then trafilatura)."""
    from email.utils import parsedate_to_datetime

    from energywatch.extract import extract_article
    from energywatch.models import FeedItem

    html, dated = job
    item = FeedItem(feed_id="b", source="b", url="http://b/", canonical_url="http://b/", doc_id="b",
                    published_at=parsedate_to_datetime(FEED_DATE) if dated else None)
    return len(extract_article(html, url=item.url, item=item).text)


def _warm() -> None:
    import trafilatura  # noqa: F401


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pool_cpu(pool: ProcessPoolExecutor) -> float:
    """CPU seconds used so far by a pool's worker processes."""
    return sum(process_cpu(pid) for pid in pool._processes)  # noqa: SLF001 (a benchmark may peek)


def _ceiling_driver(limit: int | None, workers: int, rounds: int, conn: Connection) -> None:
    """Own process: holds the pages and a warm pool, and times extraction of one round on request."""
    pages = [(html, is_dated(i)) for i, html in enumerate(load_pages(limit).values())]
    ctx = multiprocessing.get_context("forkserver")
    calls = {"same-call": _ceiling_same_call, "plain": _ceiling_bytes}
    # a pool per call: each worker sees each page once, as the pipeline's do (trafilatura's caches would
    # flatter a second pass over the same pages)
    pools = {name: ProcessPoolExecutor(workers, mp_context=ctx, initializer=_warm) for name in calls}
    for name, pool in pools.items():
        list(pool.map(calls[name], [(b"<html><body><p>warm</p></body></html>", True)] * workers))
    conn.send(("ready", len(pages)))
    while (request := conn.recv()) is not None:
        round_no, name = request
        pool = pools[name]
        cpu0, started = pool_cpu(pool) + time.process_time(), time.perf_counter()
        list(pool.map(calls[name], pages[round_no::rounds], chunksize=4))
        conn.send((time.perf_counter() - started, pool_cpu(pool) + time.process_time() - cpu0))
    for pool in pools.values():
        pool.shutdown()


class Ceiling:
    """The extraction ceiling, measured round by round in a process of its own."""

    def __init__(self, limit: int | None, workers: int, rounds: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        # not a daemon: daemonic processes may not start the pool's workers
        self.process = ctx.Process(target=_ceiling_driver, args=(limit, workers, rounds, child))
        self.process.start()
        if not self._conn.poll(180):
            self.process.kill()
            raise RuntimeError("the ceiling process did not start (see its error above)")
        _, self.pages = self._conn.recv()

    def measure(self, round_no: int, name: str) -> tuple[float, float]:
        """Seconds and CPU seconds to extract one round's pages with the named call."""
        self._conn.send((round_no, name))
        return self._conn.recv()

    def close(self) -> None:
        """Stop the process and its pool."""
        self._conn.send(None)
        self.process.join(timeout=30)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, tuple[bytes, str]] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real news sites answer

    def do_GET(self) -> None:  # noqa: N802
        body, ctype = self.server.routes.get(self.path.split("?")[0], (b"not found", "text/plain"))  # type: ignore[attr-defined]
        self.send_response(200 if ctype != "text/plain" else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve_forever(limit: int | None, feeds: int, rounds: int, ready: multiprocessing.Queue) -> None:
    pages = load_pages(limit)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes, urls = _routes(pages, feeds, rounds, f"http://127.0.0.1:{server.server_address[1]}")
    ready.put(urls)
    server.serve_forever()


def serve(limit: int | None, feeds: int, rounds: int) -> tuple[multiprocessing.Process, list[list[str]]]:
    """Start a local server in its own process (loading the pages itself), so that neither its CPU
    time nor its memory is counted as the pipeline's; returns it and each round's feed URLs."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    process = ctx.Process(target=_serve_forever, args=(limit, feeds, rounds, ready), daemon=True)
    process.start()
    return process, ready.get(timeout=60)


def _routes(pages: dict[str, bytes], feeds: int, rounds: int,
            base: str) -> tuple[dict[str, tuple[bytes, str]], list[list[str]]]:
    """Every page, and for each round `feeds` RSS feeds listing that round's pages (as the ceiling splits them)."""
    routes = {path: (html, "text/html") for path, html in pages.items()}
    paths = list(pages)
    dated = {path for i, path in enumerate(paths) if is_dated(i)}
    round_urls = []
    for r in range(rounds):
        in_round = paths[r::rounds]
        feed_urls = []
        for n in range(feeds):
            items = "".join(f"<item><title>{escape(p)}</title><link>{base}{escape(p)}</link><guid>{escape(p)}</guid>"
                            + (f"<pubDate>{FEED_DATE}</pubDate>" if p in dated else "") + "</item>"
                            for p in in_round[n::feeds])
            routes[f"/r{r}/feed{n}.xml"] = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>bench {r}/{n}'
                                            f"</title>{items}</channel></rss>".encode(), "application/rss+xml")
            feed_urls.append(f"{base}/r{r}/feed{n}.xml")
        round_urls.append(feed_urls)
    return routes, round_urls


class MemorySampler:
    """Samples the proportional set size (PSS) of this process and its descendants every 250 ms.

    PSS, not RSS: the workers are forked from a fork server that has loaded trafilatura and the
    language model, and share those pages with it; summing RSS would count them once per process.
    Walking /proc costs CPU in this very process; sampling more often than this took ~1.7 s of CPU
    from a 26 s run, CPU the pipeline under measurement then lacked.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.peak = 0
        self._exclude = exclude
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _tree_pss(self, pid: int) -> int:
        total = 0
        if pid in self._exclude:
            return 0
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    total += self._tree_pss(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_pss(os.getpid()))
            time.sleep(0.25)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Pipeline:
    """The full pipeline over a fresh SQLite store, with warm workers, run round by round."""

    def __init__(self, workers: int, store_path: str) -> None:
        from energywatch.config import Settings
        from energywatch.pipeline import make_pool
        from energywatch.store.sqlite import SQLiteStore

        self.settings = Settings(store=f"sqlite:///{store_path}", allow_private_addresses=True, workers=workers,
                                 per_host_concurrency=16, global_concurrency=16)
        self.store = SQLiteStore(store_path)
        self.pool = make_pool(self.settings)
        # a builtin: the workers never import this script (`__main__`), so a function of it cannot reach them
        list(self.pool.map(abs, range(workers)))

    def measure(self, round_no: int, feed_urls: list[str]) -> tuple[float, float, object]:
        """Seconds and CPU seconds (this process and its workers) for one run over a round's feeds, and its summary."""
        from energywatch.models import Feed
        from energywatch.pipeline import run_async

        feeds = [Feed(id=f"bench{round_no}-{n}", name=f"Bench {round_no}/{n}", url=url) for n, url in enumerate(feed_urls)]
        main0, workers0, started = time.process_time(), pool_cpu(self.pool), time.perf_counter()
        summary = asyncio.run(run_async(self.settings, feeds, self.store, pool=self.pool))
        elapsed = time.perf_counter() - started
        main_cpu, workers_cpu = time.process_time() - main0, pool_cpu(self.pool) - workers0
        summary.stage_seconds["cpu:main-process"] = main_cpu
        summary.stage_seconds["cpu:workers"] = workers_cpu
        return elapsed, main_cpu + workers_cpu, summary

    def close(self) -> None:
        """Stop the workers and close the store."""
        self.pool.shutdown()
        self.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the ceiling")
    parser.add_argument("--pipeline-workers", type=int, default=None,
                        help="extraction processes for the pipeline (default: ENERGYWATCH_WORKERS's default)")
    parser.add_argument("--feeds", type=int, default=10, help="generated feeds per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds in which ceiling and pipeline alternate")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    from energywatch.config import Settings

    pipeline_workers = args.pipeline_workers or Settings().workers
    server, round_urls = serve(args.limit, args.feeds, args.rounds)
    ceiling = Ceiling(args.limit, args.workers, args.rounds)
    totals = {"same-call": [0.0, 0.0], "plain": [0.0, 0.0], "pipeline": [0.0, 0.0]}
    stages: dict[str, float] = {}
    stored = failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(pipeline_workers, f"{tmp}/bench.db")
        with MemorySampler(exclude={server.pid, ceiling.process.pid}) as sampler:
            for r in range(args.rounds):
                # alternate which goes first, so that neither always runs on a warmer or cooler machine
                order = ("ceiling", "pipeline") if r % 2 == 0 else ("pipeline", "ceiling")
                for what in order:
                    if what == "ceiling":
                        for name in ("same-call", "plain"):
                            wall, cpu = ceiling.measure(r, name)
                            totals[name][0] += wall
                            totals[name][1] += cpu
                        continue
                    wall, cpu, summary = pipeline.measure(r, round_urls[r])
                    totals["pipeline"][0] += wall
                    totals["pipeline"][1] += cpu
                    stored += summary.documents_stored
                    failures += len(summary.failures)
                    for stage, seconds in summary.stage_seconds.items():
                        stages[stage] = stages.get(stage, 0.0) + seconds
                print(f"round {r + 1}/{args.rounds}: pipeline {stored} documents so far", file=sys.stderr)
        pipeline.close()
    ceiling.close()
    server.terminate()
    n = ceiling.pages
    (ceiling_s, ceiling_cpu), (plain_s, plain_cpu) = totals["same-call"], totals["plain"]
    pipeline_s, pipeline_cpu = totals["pipeline"]
    figures = {
        "pages": n, "rounds": args.rounds, "workers": args.workers, "pipeline_workers": pipeline_workers,
        "ceiling_articles_per_s": round(n / ceiling_s, 2),
        "pipeline_articles_per_s": round(stored / pipeline_s, 2), "documents_stored": stored,
        "ratio_pipeline_to_ceiling": round((stored / pipeline_s) / (n / ceiling_s), 3),
        "plain_trafilatura_articles_per_s": round(n / plain_s, 2),
        "ratio_pipeline_to_plain_trafilatura": round((stored / pipeline_s) / (n / plain_s), 3),
        "ceiling_cpu_ms_per_article": round(1000 * ceiling_cpu / n, 2),
        "plain_trafilatura_cpu_ms_per_article": round(1000 * plain_cpu / n, 2),
        "pipeline_cpu_ms_per_article": round(1000 * pipeline_cpu / max(stored, 1), 2),
        "cpu_ratio_ceiling_to_pipeline": round((ceiling_cpu / n) / (pipeline_cpu / max(stored, 1)), 3),
        "pipeline_core_utilisation": round(pipeline_cpu / (pipeline_s * pipeline_workers), 3),
        "peak_pss_mib": round(sampler.peak / 2**20, 1),
        "stage_seconds_summed": {k: round(v, 2) for k, v in stages.items()},
        "failures": failures,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"pages: {n} (aeb + trafilatura-eval) in {args.rounds} alternating rounds, cores: {os.cpu_count()}, "
          f"ceiling processes: {args.workers}, pipeline workers: {pipeline_workers}")
    print(f"(a) extraction ceiling : {figures['ceiling_articles_per_s']:8.2f} articles/s ({ceiling_s:.1f} s; "
          "the workers' own extraction call, pages in memory)")
    print(f"    plain trafilatura  : {figures['plain_trafilatura_articles_per_s']:8.2f} articles/s ({plain_s:.1f} s; "
          "bare_extraction on bytes, its own decoding)")
    print(f"(b) full pipeline      : {figures['pipeline_articles_per_s']:8.2f} articles/s ({pipeline_s:.1f} s, "
          f"{stored} stored, {failures} failures)")
    print(f"ratio (b)/(a)          : {figures['ratio_pipeline_to_ceiling']:.3f}  (target ≥ 0.85)")
    print(f"ratio (b)/plain        : {figures['ratio_pipeline_to_plain_trafilatura']:.3f}")
    print(f"CPU per article        : ceiling {figures['ceiling_cpu_ms_per_article']} ms, plain trafilatura "
          f"{figures['plain_trafilatura_cpu_ms_per_article']} ms, pipeline "
          f"{figures['pipeline_cpu_ms_per_article']} ms; ratio {figures['cpu_ratio_ceiling_to_pipeline']:.3f} "
          f"(pipeline kept its {pipeline_workers} cores {figures['pipeline_core_utilisation']:.0%} busy)")
    print(f"peak memory (PSS, pipeline process, fork server and workers): {figures['peak_pss_mib']} MiB  (target < 1024)")
    print("per-stage time summed over concurrent tasks (worker stages and cpu:* are CPU time, the rest wall-clock):")
    for stage, seconds in sorted(figures["stage_seconds_summed"].items()):
        print(f"  {stage:18} {seconds:8.2f} s")


if __name__ == "__main__":
    main()
