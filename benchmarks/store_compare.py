"""The two stores side by side: the same enriched documents into SQLite and into a live Elasticsearch node.

    .venv/bin/python benchmarks/store_compare.py [--sizes 10000,100000] [--es-url URL] [--sqlite-budget 10] [--batch 64]

The 1,065 corpus pages (../shared/corpus: aeb and trafilatura-eval) are extracted and enriched once
by the pipeline's own worker function, then replicated with new ids, URLs, stories and dates spread
over a year until each size is reached. Each store is filled the way the pipeline writes (batches of
64 through `put_documents`), and at each size the benchmark prints the write throughput of the step
that reached it and p50/p95 over three passes of 20 searches with facets (after one warm-up pass):
common and rare words, phrases, a prefix, an exclusion, ru/ar/uk/de words, filters, `since`, sort by
date, and the empty query (the web UI's landing page). Without --es-url (or ELASTICSEARCH_URL) it
starts the tests' node (tests/es_node.py: Maven, Java 21+). A SQLite search that exceeds
--sqlite-budget seconds is interrupted and counted at the budget (shown with ">").
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_throughput import load_pages

from energywatch.models import Document, FeedItem, SearchQuery
from energywatch.store.base import Store

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
BATCH = 64  # the pipeline's write batch


def searches() -> list[tuple[str, SearchQuery]]:
    """The fixed set of 20 searches, all with facets (the default of the CLI, the API and the UI)."""
    return [
        ("energy", SearchQuery(text="energy")),
        ("gas", SearchQuery(text="gas")),
        ("government", SearchQuery(text="government")),
        ("pipeline sabotage", SearchQuery(text="pipeline sabotage")),
        ("rare: electrolyser", SearchQuery(text="electrolyser")),
        ('"natural gas"', SearchQuery(text='"natural gas"')),
        ('"power plant"', SearchQuery(text='"power plant"')),
        ("prefix energ*", SearchQuery(text="energ*")),
        ("gas -russia", SearchQuery(text="gas -russia")),
        ("ru: газ", SearchQuery(text="газ")),
        ("ar: النفط", SearchQuery(text="النفط")),
        ("uk: енергетика", SearchQuery(text="енергетика")),
        ("de: Energie", SearchQuery(text="Energie", languages=("de",))),
        ("gas, label core", SearchQuery(text="gas", labels=("core",))),
        ("oil, since 30 days", SearchQuery(text="oil", since=NOW - timedelta(days=30))),
        ("electricity, by date", SearchQuery(text="electricity", sort="date")),
        ("nuclear, lang en, org filter", SearchQuery(text="nuclear", languages=("en",), organizations=("NATO",))),
        ("empty query (landing page)", SearchQuery()),
        ("empty query, label related", SearchQuery(labels=("related",))),
        ("empty query, since 7 days", SearchQuery(since=NOW - timedelta(days=7))),
    ]


def _enrich(job: tuple[str, bytes]) -> Document | None:
    from energywatch.config import Settings
    from energywatch.pipeline import PageJob, build_document

    path, html = job
    url = f"https://corpus.example{path}"
    item = FeedItem(feed_id="corpus", source="Corpus", url=url, canonical_url=url, doc_id=uuid.uuid5(
        uuid.NAMESPACE_URL, url).hex, guid=url)
    job_ = PageJob(item=item, html=html, final_url=url, charset=None, fetched_at=NOW, fallback_reason=None,
                   min_text_chars=200, languages=(), language_sample_chars=600,
                   max_text_chars=Settings.model_fields["max_text_chars"].default)
    try:
        document, _ = build_document(job_)
    except Exception as exc:  # noqa: BLE001 - a page the pipeline cannot use is left out, as in a run
        print(f"  {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return document


def enriched_corpus() -> list[Document]:
    """Every corpus page extracted and enriched by the pipeline's own worker function."""
    pages = load_pages(None)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        documents = [d for d in pool.map(_enrich, pages.items(), chunksize=8) if d is not None]
    print(f"enriched {len(documents)} of {len(pages)} corpus pages in {time.perf_counter() - t0:.0f} s")
    return documents


def replicas(base: Sequence[Document], start: int, stop: int, seed: int = 7) -> Iterator[Document]:
    """Copies number start..stop-1 of the corpus documents: new id, URL, story and date (over a year)."""
    rng = random.Random(seed * 1_000_003 + start)
    for n in range(start, stop):
        doc = base[n % len(base)]
        doc_id = f"{n:08x}{doc.id[8:]}"
        published = NOW - timedelta(seconds=rng.randrange(365 * 86_400))
        # one document in ten is a further copy of a recent story (syndication), as stories collapse
        story = f"story-{n - 1:08x}" if n % 10 == 9 else f"story-{n:08x}"
        yield doc.model_copy(update={
            "id": doc_id, "url": f"{doc.url}?copy={n}", "canonical_url": f"{doc.canonical_url}?copy={n}",
            "guid": f"{doc.guid}#{n}", "published_at": published, "fetched_at": published, "indexed_at": None,
            "story_id": story, "content_hash": f"{n:016x}",
        })


def time_searches(store: Store, budget: float, interrupt: Callable[[], None] | None) -> tuple[list[float], list[str]]:
    """One warm-up pass, then three measured passes; (timings, names of searches over budget).

    A search cut off at the budget in one pass is not run again: it counts at the budget in the rest."""
    timings: list[float] = []
    over: set[str] = set()
    for rep in range(4):
        for name, query in searches():
            if name in over:
                timings.extend([budget] if rep else [])
                continue
            timer = threading.Timer(budget, interrupt) if interrupt else None
            if timer:
                timer.start()
            t0 = time.perf_counter()
            try:
                store.search(query)
                elapsed = time.perf_counter() - t0
            except Exception:
                if not interrupt or time.perf_counter() - t0 < budget * 0.9:
                    raise
                elapsed = budget  # the budget's interrupt
                over.add(name)
            finally:
                if timer:
                    timer.cancel()
            if rep:
                timings.append(elapsed)
    return timings, sorted(over)


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="store sizes, comma-separated")
    parser.add_argument("--es-url", default=os.environ.get("ELASTICSEARCH_URL"), help="a live node (else one is started)")
    parser.add_argument("--sqlite-budget", type=float, default=10.0, help="seconds before a SQLite search is cut off")
    parser.add_argument("--stores", default="elasticsearch,sqlite")
    parser.add_argument("--batch", type=int, default=BATCH, help="documents per put_documents call (the pipeline's: 64)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = enriched_corpus()

    node = None
    results: dict[str, list[tuple[int, float, list[float], list[str]]]] = {}
    try:
        for kind in args.stores.split(","):
            if kind == "elasticsearch":
                from energywatch.store.elasticsearch import ElasticsearchStore

                url = args.es_url
                if not url:
                    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
                    import es_node

                    node = es_node.start_node(heap="1g")
                    url = node.url
                store: Store = ElasticsearchStore.from_url(url, prefix=f"ew-bench-{uuid.uuid4().hex[:6]}", replicas=0)
                interrupt = None
            else:
                from energywatch.store.sqlite import SQLiteStore

                folder = Path(tempfile.mkdtemp(prefix="energywatch-bench-"))
                store = SQLiteStore(folder / "bench.db")
                interrupt = store._db.interrupt  # the budget: SQLite's own way to stop a running statement
            print(f"{kind}:")
            done = 0
            for size in sizes:
                t0 = time.perf_counter()
                _write(store, base, done, size, args.batch)
                rate = (size - done) / (time.perf_counter() - t0)
                done = size
                store.prepare_lookups()
                if kind == "elasticsearch":
                    store.client.indices.refresh(index=store.alias)
                timings, over = time_searches(store, args.sqlite_budget, interrupt)
                results.setdefault(kind, []).append((size, rate, timings, over))
                print(f"  {size:>9,} docs: write {rate:,.0f} docs/s; search p50 {_percentile(timings, 50) * 1000:,.0f} ms, "
                      f"p95 {_percentile(timings, 95) * 1000:,.0f} ms" + (f"; over budget: {', '.join(over)}" if over else ""),
                      flush=True)
            if kind == "elasticsearch":
                store.client.indices.forcemerge(index=store.alias, max_num_segments=1, wait_for_completion=True,
                                                request_timeout=900)
                size_bytes = store.client.indices.stats(index=store.alias, metric="store")["_all"]["primaries"][
                    "store"]["size_in_bytes"]
                print(f"  index: {size_bytes / done / 1024:.1f} kB per document (merged to one segment)")
                store.drop_all()
            else:
                size_bytes = sum(p.stat().st_size for p in folder.iterdir())
                print(f"  file: {size_bytes / done / 1024:.1f} kB per document")
            store.close()
    finally:
        if node is not None:
            node.stop()
    print("\n| store | documents | write docs/s | search p50 ms | search p95 ms |\n|---|---|---|---|---|")
    for kind, rows in results.items():
        for size, rate, timings, over in rows:
            mark = ">" if over else ""
            print(f"| {kind} | {size:,} | {rate:,.0f} | {_percentile(timings, 50) * 1000:,.0f} | "
                  f"{mark}{_percentile(timings, 95) * 1000:,.0f} |")


def _write(store: Store, base: Sequence[Document], start: int, stop: int, size: int) -> None:
    """Documents start..stop-1 in the pipeline's batches, with progress every 10,000."""
    batch: list[Document] = []
    for n, doc in enumerate(replicas(base, start, stop), start=start + 1):
        batch.append(doc)
        if len(batch) == size:
            store.put_documents(batch)
            batch = []
        if n % 10_000 == 0:
            print(f"    {n:,} written", flush=True)
    if batch:
        store.put_documents(batch)


if __name__ == "__main__":
    main()
