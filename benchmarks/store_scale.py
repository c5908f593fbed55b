"""The embedded default store at a year of news: 10k, 100k and 1M documents on one SQLite file.

    .venv/bin/python benchmarks/store_scale.py [--sizes 10000,100000,1000000] [--path FILE] [--keep]

The 1,065 corpus pages (../shared/corpus) are extracted and enriched once by the pipeline's own
worker function, then replicated the way a year of ingestion writes them: new ids, URLs and GUIDs,
dates rising over 365 days in arrival order (one item in ten back-dated by up to three days, as
feeds do), paragraphs shuffled, and one document in ten a further copy of the story before it (its
LSH band keys shared, the others' made unique). They go into the store through `put_documents` in
the pipeline's batches of 64. At each size it prints:

- write throughput over the last 10,000 documents before the size was reached, and file per document;
- p50/p95 over three passes (after a warm-up) of a fixed set of 22 searches with facets: common and
  rare words, phrases, a prefix, an exclusion, ru/ar/uk/de words, filters, `since`, sort by date and
  the empty query;
- the web UI's landing page (search, timeline and stats, as its handler calls them);
- `stats`, the timeline of a common word, and the story lookup of a new document (content hash and
  band candidates from the store, then the similarity check that picks its story), per document.

Targets (issue 16): search and landing page p95 ≤ 300 ms at 1M; stats ≤ 100 ms; story lookup
≤ 2 ms per new document and flat; write throughput at 1M within 20% of 10k's; ≤ 10 kB per document.
A million documents take about half an hour to write and ~10 GB of disk.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_compare import enriched_corpus, searches

from energywatch.analysis import analyze
from energywatch.enrich.dedup import group
from energywatch.models import Document, SearchQuery
from energywatch.store.sqlite import SQLiteStore

START = datetime(2025, 12, 1, tzinfo=timezone.utc)
YEAR = timedelta(days=365)


def all_searches() -> list[tuple[str, SearchQuery]]:
    """store_compare's 20 searches and two more: a two-word query by date, and a story filter."""
    return [*searches(),
            ("nato gas, by date", SearchQuery(text="nato gas", sort="date")),
            ("grid attack, label core, 7 days", SearchQuery(text="grid attack", labels=("core",),
                                                            since=START + YEAR - timedelta(days=7)))]


class Corpus:
    """The enriched corpus pages, each split into paragraphs with their index terms, ready to copy."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.documents = list(documents)
        self.paragraphs: list[list[tuple[str, str]]] = []
        self.titles: list[str] = []
        for doc in self.documents:
            parts = [p for p in doc.text.split("\n") if p.strip()] or [doc.text]
            self.paragraphs.append([(p, " ".join(analyze(p, doc.language))) for p in parts])
            self.titles.append(" ".join(analyze(doc.title, doc.language)))

    def replicas(self, start: int, stop: int, total: int, seed: int = 7) -> Iterator[Document]:
        """Copies number start..stop-1 of `total`, as a year of ingestion writes them."""
        rng = random.Random(seed * 1_000_003 + start)
        for n in range(start, stop):
            k = n % len(self.documents)
            doc = self.documents[k]
            arrived = START + YEAR * (n / total)
            published = arrived - timedelta(seconds=rng.randrange(3 * 86_400)) if n % 10 == 3 else arrived
            paragraphs = list(self.paragraphs[k])
            rng.shuffle(paragraphs)
            # one document in ten retells the story before it: the same band keys, the same story
            family = n - 1 if n % 10 == 9 else n
            yield doc.model_copy(update={
                "id": f"{n:08x}{doc.id[8:]}", "url": f"{doc.url}?copy={n}", "canonical_url": f"{doc.canonical_url}?copy={n}",
                "guid": f"{doc.guid}#{n}", "published_at": published, "fetched_at": arrived, "indexed_at": arrived,
                "story_id": f"story-{family:08x}", "content_hash": f"{n:016x}",
                "text": "\n".join(p for p, _ in paragraphs),
                "lsh_bands": tuple(f"{b}~{family}" for b in doc.lsh_bands),
                "index_terms": (self.titles[k], " ".join(t for _, t in paragraphs)),
            })


def timed(call: Callable[[], object], passes: int = 3) -> list[float]:
    """Seconds per call: one warm-up, then `passes` measured calls."""
    call()
    out = []
    for _ in range(passes):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def story_lookup(store: SQLiteStore, corpus: Corpus, done: int, total: int, samples: int = 200) -> tuple[float, float]:
    """Milliseconds per new document: (store lookups alone, lookups and the similarity check)."""
    new = list(corpus.replicas(total + 1, total + 1 + samples, total * 2))
    lookups = full = 0.0
    for doc in new:
        # as a copy of a recent story: its band keys are those of a document already stored
        doc = doc.model_copy(update={"lsh_bands": tuple(b.rsplit("~", 1)[0] + f"~{done - 1 - int(doc.id[:8], 16) % 5000}"
                                                        for b in doc.lsh_bands)})
        t0 = time.perf_counter()
        exact = store.find_by_content_hash(doc.content_hash or "")
        candidates = store.find_by_bands(list(doc.lsh_bands))
        t1 = time.perf_counter()
        group(doc, exact, candidates)
        t2 = time.perf_counter()
        lookups += t1 - t0
        full += t2 - t0
    return 1000 * lookups / samples, 1000 * full / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="store sizes, comma-separated")
    parser.add_argument("--path", type=Path, help="the store file (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the store file afterwards")
    parser.add_argument("--batch", type=int, default=64, help="documents per put_documents call (the pipeline's: 64)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure a store kept by --keep again (searches, stats, lookups; no writing)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    corpus = Corpus(enriched_corpus())
    path = args.path or Path(tempfile.mkdtemp(prefix="energywatch-scale-")) / "scale.db"
    if path.exists() and not args.reuse:
        sys.exit(f"{path} exists: give a new --path, or --reuse to measure it again")
    store = SQLiteStore(path)
    total = sizes[-1]
    rows = []
    done = 0
    if args.reuse:
        done = store.stats().documents
        sizes = [done]
    try:
        for size in sizes:
            t_last = time.perf_counter()
            last_from = max(done, size - 10_000)
            written = size - done
            batch: list[Document] = []
            for n, doc in enumerate(corpus.replicas(done, size, total), start=done + 1):
                batch.append(doc)
                if len(batch) == args.batch or n == size:
                    store.put_documents(batch)
                    batch = []
                if n == last_from:
                    t_last = time.perf_counter()
                if n % 50_000 == 0:
                    print(f"    {n:,} written", file=sys.stderr, flush=True)
            rate = (size - last_from) / (time.perf_counter() - t_last) if written else float("nan")
            done = size
            store._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            per_doc = sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / size
            timings: list[float] = []
            by_name: dict[str, float] = {}
            for name, query in all_searches():
                values = timed(lambda q=query: store.search(q))
                timings += values
                by_name[name] = statistics.median(values)
            landing = timed(lambda: (store.search(SearchQuery()), store.timeline(SearchQuery()), store.stats()))
            stats = timed(store.stats)
            timeline = timed(lambda: store.timeline(SearchQuery(text="energy")))
            lookup, grouping = story_lookup(store, corpus, done, total)
            row = {"docs": size, "write": rate, "kb": per_doc / 1024, "p50": percentile(timings, 50) * 1000,
                   "p95": percentile(timings, 95) * 1000, "landing": max(landing) * 1000,
                   "stats": max(stats) * 1000, "timeline": max(timeline) * 1000, "lookup": lookup,
                   "grouping": grouping}
            rows.append(row)
            slowest = sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
            print(f"{size:>9,} docs: write {rate:,.0f} docs/s, {row['kb']:.1f} kB/doc; search p50 {row['p50']:,.0f} ms, "
                  f"p95 {row['p95']:,.0f} ms; landing page {row['landing']:,.0f} ms; stats {row['stats']:,.1f} ms; "
                  f"timeline 'energy' {row['timeline']:,.0f} ms; story lookup {lookup:.2f} ms "
                  f"({grouping:.2f} ms with the similarity check); slowest: "
                  + ", ".join(f"{name} {t * 1000:,.0f} ms" for name, t in slowest), flush=True)
    finally:
        store.close()
        if not args.keep and not args.reuse:
            for p in path.parent.glob(path.name + "*"):
                p.unlink()
    print("\n| documents | write docs/s | kB/doc | search p50 ms | search p95 ms | landing page ms | stats ms "
          "| timeline ms | story lookup ms (+ similarity) |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['docs']:,} | {r['write']:,.0f} | {r['kb']:.1f} | {r['p50']:,.0f} | {r['p95']:,.0f} | "
              f"{r['landing']:,.0f} | {r['stats']:,.1f} | {r['timeline']:,.0f} | {r['lookup']:.2f} ({r['grouping']:.2f}) |")
    if len(rows) > 1:
        ratio = rows[-1]["write"] / rows[0]["write"]
        print(f"write throughput at {rows[-1]['docs']:,} / at {rows[0]['docs']:,}: {ratio:.2f} (target ≥ 0.80)")


if __name__ == "__main__":
    main()
