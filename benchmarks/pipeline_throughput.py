"""Pipeline throughput against the extraction ceiling, measured in one run on the shared corpus.

    .venv/bin/python benchmarks/pipeline_throughput.py [--limit N] [--workers N]

(a) ceiling: trafilatura over every page on all cores, pages already in memory, no I/O;
(b) the full pipeline (poll → fetch → extract → language → store) against a local HTTP server
serving the same pages under generated RSS feeds, into a fresh SQLite store.
Prints articles per second for both, their ratio, the per-stage breakdown and peak memory (RSS of
this process and its workers, sampled). Needs ../shared/corpus (or ENERGYWATCH_SHARED).
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


def _ceiling_bytes(html: bytes) -> int:
    """trafilatura as most people call it: bytes in, its own encoding detection."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, with_metadata=True, fast=True, include_comments=False,
                                      include_tables=True)
    return len(doc.text or "") if doc else 0


def _ceiling_same_call(html: bytes) -> int:
    """Exactly the extraction the pipeline's workers run (our decoding, then trafilatura)."""
    from energywatch.extract import extract_article
    from energywatch.models import FeedItem

    item = FeedItem(feed_id="b", source="b", url="http://b/", canonical_url="http://b/", doc_id="b")
    return len(extract_article(html, url=item.url, item=item).text)


def _warm() -> None:
    import trafilatura  # noqa: F401


def measure_ceiling(pages: dict[str, bytes], workers: int, fn=_ceiling_same_call) -> float:
    """Seconds for extraction alone over all pages on `workers` processes (start-up excluded)."""
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_warm) as pool:
        list(pool.map(fn, [b"<html><body><p>warm</p></body></html>"] * workers))
        started = time.perf_counter()
        list(pool.map(fn, pages.values(), chunksize=4))
        return time.perf_counter() - started


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


def _serve_forever(limit: int | None, feeds: int, ready: multiprocessing.Queue) -> None:
    pages = load_pages(limit)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.routes, urls = _routes(pages, feeds, f"http://127.0.0.1:{server.server_address[1]}")
    ready.put(urls)
    server.serve_forever()


def serve(limit: int | None, feeds: int) -> tuple[multiprocessing.Process, list[str]]:
    """Start a local server in its own process (loading the pages itself), so that neither its CPU
    time nor its memory is counted as the pipeline's."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    process = ctx.Process(target=_serve_forever, args=(limit, feeds, ready), daemon=True)
    process.start()
    return process, ready.get(timeout=60)


def _routes(pages: dict[str, bytes], feeds: int, base: str) -> tuple[dict[str, tuple[bytes, str]], list[str]]:
    routes = {path: (html, "text/html") for path, html in pages.items()}
    paths = list(pages)
    feed_urls = []
    for n in range(feeds):
        chunk = paths[n::feeds]
        items = "".join(f"<item><title>{escape(p)}</title><link>{base}{escape(p)}</link><guid>{escape(p)}</guid></item>"
                        for p in chunk)
        routes[f"/feed{n}.xml"] = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>bench {n}</title>'
                                   f"{items}</channel></rss>".encode(), "application/rss+xml")
        feed_urls.append(f"{base}/feed{n}.xml")
    return routes, feed_urls


class RssSampler:
    """Samples the resident memory of this process and its children (the workers) every 250 ms.

    Walking /proc costs CPU in this very process; sampling more often than this took ~1.7 s of CPU
    from a 26 s run, CPU the pipeline under measurement then lacked.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.peak = 0
        self._exclude = exclude
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _tree_rss(self, pid: int) -> int:
        total = 0
        if pid in self._exclude:
            return 0
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    total += self._tree_rss(int(child))
        except (FileNotFoundError, ProcessLookupError):
            pass
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss(os.getpid()))
            time.sleep(0.25)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure_pipeline(limit: int | None, workers: int, feeds: int) -> tuple[float, object, int]:
    """Seconds for one full pipeline run over the pages (worker start-up excluded), the summary, peak RSS."""
    from energywatch.config import Settings
    from energywatch.models import Feed
    from energywatch.pipeline import make_pool, run_async
    from energywatch.store.sqlite import SQLiteStore

    server, urls = serve(limit, feeds)
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store=f"sqlite:///{tmp}/bench.db", allow_private_addresses=True, workers=workers,
                            per_host_concurrency=16, global_concurrency=16)
        feed_list = [Feed(id=f"bench{n}", name=f"Bench {n}", url=url) for n, url in enumerate(urls)]
        store = SQLiteStore(f"{tmp}/bench.db")
        pool = make_pool(settings)
        list(pool.map(_warm_noop, range(workers)))
        with RssSampler(exclude={server.pid}) as sampler:
            started = time.perf_counter()
            summary = asyncio.run(run_async(settings, feed_list, store, pool=pool))
            elapsed = time.perf_counter() - started
        main_cpu = time.process_time() - cpu0
        pool.shutdown()
        store.close()
    server.terminate()
    summary.stage_seconds["main-process-cpu"] = main_cpu  # type: ignore[attr-defined]
    return elapsed, summary, sampler.peak


def _warm_noop(_: int) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the ceiling")
    parser.add_argument("--pipeline-workers", type=int, default=None,
                        help="extraction processes for the pipeline (default: ENERGYWATCH_WORKERS's default)")
    parser.add_argument("--feeds", type=int, default=10, help="number of generated feeds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    pages = load_pages(args.limit)
    n = len(pages)
    ceiling_s = measure_ceiling(pages, args.workers, _ceiling_same_call)
    plain_s = measure_ceiling(pages, args.workers, _ceiling_bytes)
    del pages  # the pipeline reads them from the server, as it would from the web
    from energywatch.config import Settings

    pipeline_workers = args.pipeline_workers or Settings().workers
    pipeline_s, summary, peak = measure_pipeline(args.limit, pipeline_workers, args.feeds)
    stored = summary.documents_stored  # type: ignore[attr-defined]
    figures = {
        "pages": n, "workers": args.workers, "pipeline_workers": pipeline_workers, "ceiling_articles_per_s": round(n / ceiling_s, 2),
        "pipeline_articles_per_s": round(stored / pipeline_s, 2), "documents_stored": stored,
        "ratio_pipeline_to_ceiling": round((stored / pipeline_s) / (n / ceiling_s), 3),
        "plain_trafilatura_articles_per_s": round(n / plain_s, 2),
        "ratio_pipeline_to_plain_trafilatura": round((stored / pipeline_s) / (n / plain_s), 3),
        "peak_rss_mib": round(peak / 2**20, 1),
        "stage_seconds_summed": {k: round(v, 2) for k, v in summary.stage_seconds.items()},  # type: ignore[attr-defined]
        "failures": len(summary.failures),  # type: ignore[attr-defined]
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"pages: {n} (aeb + trafilatura-eval), cores: {os.cpu_count()}, ceiling processes: {args.workers}, "
          f"pipeline workers: {pipeline_workers}")
    print(f"(a) extraction ceiling : {figures['ceiling_articles_per_s']:8.2f} articles/s ({ceiling_s:.1f} s; "
          "the workers' own extraction call, pages in memory)")
    print(f"    plain trafilatura  : {figures['plain_trafilatura_articles_per_s']:8.2f} articles/s ({plain_s:.1f} s; "
          "bare_extraction on bytes, its own decoding)")
    print(f"(b) full pipeline      : {figures['pipeline_articles_per_s']:8.2f} articles/s ({pipeline_s:.1f} s, "
          f"{stored} stored, {figures['failures']} failures)")
    print(f"ratio (b)/(a)          : {figures['ratio_pipeline_to_ceiling']:.3f}  (target ≥ 0.85)")
    print(f"ratio (b)/plain        : {figures['ratio_pipeline_to_plain_trafilatura']:.3f}")
    print(f"peak memory (RSS, process + workers): {figures['peak_rss_mib']} MiB  (target < 1024)")
    print("per-stage time, summed over concurrent tasks:")
    for stage, seconds in sorted(figures["stage_seconds_summed"].items()):
        print(f"  {stage:10} {seconds:8.2f} s")


if __name__ == "__main__":
    main()
