"""One run: poll due feeds, fetch new articles, extract, enrich, store. The only module that knows the order."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from energywatch import workers
from energywatch.alerts.rules import RulesFile, alerts_for, load_all_rules
from energywatch.config import Settings
from energywatch.enrich import enrich
from energywatch.enrich.dedup import group, shares_band
from energywatch.errors import EnergywatchError, FetchError, StoreError, TransientError
from energywatch.feeds import ParsedFeed, PollResult, parse_feed, poll_feed, replace_state
from energywatch.http import HttpClient
from energywatch.models import Article, Document, Failure, Feed, FeedItem, FeedState, RunSummary, utcnow
from energywatch.schedule import plan_feeds
from energywatch.store.base import Store
from energywatch.urls import domain_of, redact_url

log = logging.getLogger(__name__)

_HTML_TYPES = {"text/html", "application/xhtml+xml", ""}
_PAGE_ACCEPT = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
_WRITE_BATCH = 64
MAX_PAGE_ATTEMPTS = 5  # runs in a row an entry's page may fail transiently before the feed's summary is kept
_MAX_POOL_RESTARTS = 3  # a page that kills every worker it meets is not allowed to stall the run for ever
_LEASE_MARGIN = timedelta(minutes=5)  # beyond the run deadline: a run's leases outlive it only if it dies
_WRITE_EVERY_SECONDS = 1.0  # so that a killed run keeps what it had finished


class Progress(Protocol):
    """What the pipeline reports while it works; the CLI draws it, Airflow logs it."""

    def feeds_planned(self, count: int) -> None: ...
    def feed_done(self, feed: Feed, status: str) -> None: ...
    def items_planned(self, count: int) -> None: ...
    def item_done(self) -> None: ...


class NoProgress:
    """A Progress that reports nothing."""

    def feeds_planned(self, count: int) -> None:
        """Ignore."""

    def feed_done(self, feed: Feed, status: str) -> None:
        """Ignore."""

    def items_planned(self, count: int) -> None:
        """Ignore."""

    def item_done(self) -> None:
        """Ignore."""


@dataclass(frozen=True)
class PageJob:
    """Everything a worker process needs to turn one fetched page into a Document."""

    item: FeedItem
    html: bytes | None
    final_url: str
    charset: str | None
    fetched_at: datetime
    fallback_reason: str | None
    min_text_chars: int
    languages: tuple[str, ...]
    language_sample_chars: int
    max_text_chars: int
    profile_file: str | None = None


def build_document(job: PageJob) -> tuple[Document, dict[str, float]]:
    """Extract and enrich one page (runs in a worker process); returns the document and stage CPU times."""
    # CPU time, not wall-clock: a worker waiting for a core is not extracting, and the sums then
    # show where the machine's CPU went
    # imported here, not with this module: the process that runs the pipeline never extracts (its
    # workers do, and their fork server has loaded trafilatura and the language model already), and
    # importing them cost every ingest task ~0.15 s of CPU for nothing
    from energywatch.enrich.language import detect_language
    from energywatch.extract import article_from_feed, extract_article

    timings: dict[str, float] = {}
    t0 = time.process_time()
    item = job.item
    if job.html is None:
        article = article_from_feed(item, job.fallback_reason or "page not fetched")
    else:
        article = extract_article(job.html, url=job.final_url, item=item, header_charset=job.charset,
                                  min_text_chars=job.min_text_chars)
    if len(article.text) > job.max_text_chars:
        article = _cut(article, job.max_text_chars)
    t1 = time.process_time()
    timings["extract"] = t1 - t0
    language, confidence = detect_language(article.title, article.text, languages=job.languages,
                                           hint=item.language_hint, sample_chars=job.language_sample_chars)
    t2 = time.process_time()
    timings["language"] = t2 - t1
    document = _document(item, article, job, language, confidence)
    enrichment = enrich(document.title, document.text, language, profile_path=job.profile_file)
    timings["enrich"] = time.process_time() - t2
    return document.model_copy(update={
        "relevance": enrichment.relevance, "entities": enrichment.entities,
        "content_hash": enrichment.signature.content_hash, "lsh_bands": enrichment.signature.bands,
        "index_terms": enrichment.index_terms,
    }), timings


def _cut(article: Article, limit: int) -> Article:
    """The article with its text cut at the last paragraph end before `limit` characters, and a warning."""
    end = article.text.rfind("\n", limit // 2, limit)
    text = article.text[:end if end > 0 else limit]
    warning = f"text cut at {len(text):,} of {len(article.text):,} characters (max_text_chars)"
    return article.model_copy(update={"text": text, "warnings": (*article.warnings, warning)})


def assign_stories(store: Store, batch: Sequence[Document]) -> list[Document]:
    """Give each document its story: an exact repost or a near-duplicate joins the earlier one's story."""
    store.prepare_lookups()  # documents stored a moment ago, here or by another worker, must be found
    placed: list[Document] = []
    for doc in batch:
        exact = next((d for d in placed if d.content_hash == doc.content_hash and d.id != doc.id), None)
        exact = exact or (store.find_by_content_hash(doc.content_hash) if doc.content_hash else None)
        candidates = [d for d in placed if doc.lsh_bands and shares_band(d.lsh_bands, doc.lsh_bands)]
        candidates += store.find_by_bands(list(doc.lsh_bands)) if doc.lsh_bands else []
        grouping = group(doc, exact, candidates)
        placed.append(doc.model_copy(update={"story_id": grouping.story_id, "duplicate_of": grouping.duplicate_of}))
    return placed


def rescore(store: Store, settings: Settings, *, feed_ids: set[str] | None = None,
            since: datetime | None = None) -> tuple[int, int]:
    """Re-run relevance and entities over stored documents (after a profile change); (checked, changed)."""
    profile = str(settings.profile_file) if settings.profile_file else None
    checked = changed = 0
    batch: list[Document] = []
    for doc in store.iter_documents():
        if feed_ids is not None and doc.feed_id not in feed_ids:
            continue
        if since and doc.published_at and doc.published_at < since:
            continue
        checked += 1
        result = enrich(doc.title, doc.text, doc.language, profile_path=profile)
        if result.relevance != doc.relevance or result.entities != doc.entities:
            changed += 1
            batch.append(doc.model_copy(update={"relevance": result.relevance, "entities": result.entities}))
        if len(batch) >= 200:
            store.put_documents(batch)
            batch = []
    store.put_documents(batch)
    return checked, changed


# dates before this, or more than a day after the fetch, are typos or placeholders (0001-01-01, 9999-12-31)
_EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)


def _dated(article: Article, fetched_at: datetime) -> Article:
    """The article with an impossible date replaced by the fetch time; the original kept in a warning."""
    published = article.published_at
    if published is None or _EARLIEST <= published <= fetched_at + timedelta(days=1):
        return article
    warning = f"implausible date {published.isoformat()} ({article.date_source}): the fetch time is used"
    return article.model_copy(update={"published_at": fetched_at, "date_source": "fetched",
                                      "warnings": (*article.warnings, warning)})


def _document(item: FeedItem, article: Article, job: PageJob, language: str | None,
              confidence: float | None) -> Document:
    article = _dated(article, job.fetched_at)
    return Document(
        id=item.doc_id, url=item.url, canonical_url=item.canonical_url, domain=domain_of(item.canonical_url),
        feed_id=item.feed_id, source=item.source, source_country=item.source_country, guid=item.guid,
        title=article.title or item.title, text=article.text, summary=article.summary, authors=article.authors,
        published_at=article.published_at, date_source=article.date_source, fetched_at=job.fetched_at,
        language=language, language_confidence=confidence, extraction=article.method, warnings=article.warnings,
        story_id=item.doc_id, categories=item.categories, image_url=item.image_url or article.image_url,
        declared_language=item.declared_language or item.language_hint,
    )


# how long after an entry's publication a missing page (404, 410) is taken for "not up yet"
PAGE_GRACE = timedelta(hours=1)


def _just_published(item: FeedItem) -> bool:
    """Whether the entry's own date is within PAGE_GRACE of now (a date far in the future says nothing)."""
    if item.published_at is None:
        return False
    age = utcnow() - item.published_at
    return -timedelta(hours=1) < age < PAGE_GRACE


def _parse_in_worker(feed: Feed, content: bytes, url: str, content_type: str, charset: str | None,
                     max_items: int) -> ParsedFeed:
    return parse_feed(feed, content, url=url, content_type=content_type, charset=charset, max_items=max_items)


def _warm_worker(languages: tuple[str, ...]) -> None:
    from energywatch.enrich.language import detect_language

    # trafilatura comes with this module's imports and the model from the fork server (worker_preload);
    # what is left is the identifier for the configured languages, made here rather than on the first page
    detect_language("warm up", "a short text to load the language model", languages=languages)


class _Run:
    """State of one run; see `run()`."""

    def __init__(self, settings: Settings, store: Store, progress: Progress, pool: ProcessPoolExecutor,
                 rules: RulesFile | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.progress = progress
        self.pool = pool
        self.pool_lock = asyncio.Lock()
        self.new_pools: list[ProcessPoolExecutor] = []  # started after a worker died; shut down by the run
        self.summary = RunSummary()
        self.claimed: set[str] = set()
        self.pending: list[Document] = []
        self.write_lock = asyncio.Lock()
        self.writes: list[asyncio.Task[None]] = []  # every flush of the run, awaited by finish()
        self.last_flush = time.monotonic()
        self.store_failed: set[str] = set()
        self.page_attempts: dict[str, int] = {}  # doc id → runs in a row its page failed transiently
        # pages fetched ahead of the workers: enough that a briefly busy event loop never leaves a worker
        # idle, few enough to bound memory (a page is capped at max_page_bytes)
        self.page_slots = asyncio.Semaphore(settings.workers * 8)

    def fail(self, stage: str, feed_id: str | None, url: str, reason: str, transient: bool) -> None:
        # a private feed's URL carries its password: never into the summary, the logs or Airflow's UI
        shown = redact_url(url)
        if shown != url:
            reason = reason.replace(url, shown)
        self.summary.failures.append(Failure(stage=stage, feed_id=feed_id, url=shown, reason=reason,
                                             transient=transient))
        log.warning("%s failed for %s (%s): %s", stage, shown, feed_id, reason)

    async def parse(self, feed: Feed, content: bytes, *, url: str, content_type: str, charset: str | None) -> ParsedFeed:
        return await self.in_worker(_parse_in_worker, feed, content, url, content_type, charset,
                                    self.settings.max_items_per_feed)

    async def in_worker(self, fn: Any, *args: Any) -> Any:
        """Run fn in a worker process; when a worker dies (OOM, segfault, kill) start new ones and retry once."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except BrokenProcessPool:
            async with self.pool_lock:
                if self.pool is pool:
                    if len(self.new_pools) >= _MAX_POOL_RESTARTS:
                        raise
                    log.warning("a worker process died: starting new workers (%d of %d this run)",
                                len(self.new_pools) + 1, _MAX_POOL_RESTARTS)
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.pool = make_pool(self.settings)
                    self.new_pools.append(self.pool)
                    self.summary.worker_restarts += 1
            return await loop.run_in_executor(self.pool, fn, *args)

    async def handle_feed(self, http: HttpClient, feed: Feed, state: FeedState) -> None:
        """Poll one feed and carry its new items through; only a store failure ends the run."""
        try:
            await self._handle_feed(http, feed, state)
        except StoreError:
            raise
        except Exception as exc:  # one feed's surprise never stops the others
            log.exception("feed %s failed unexpectedly", feed.id)
            self.fail("poll", feed.id, feed.url, f"unexpected {type(exc).__name__}: {exc}", False)

    async def _handle_feed(self, http: HttpClient, feed: Feed, state: FeedState) -> None:
        t0 = time.perf_counter()
        result = await poll_feed(http, feed, state, max_bytes=self.settings.max_feed_bytes, now=utcnow(),
                                 parse=self.parse)
        self.summary.add_time("poll", time.perf_counter() - t0)
        self._count_poll(result)
        for reason, count in result.dropped.items():
            self.summary.items_dropped[reason] = self.summary.items_dropped.get(reason, 0) + count
        self.progress.feed_done(feed, result.status)
        if result.status != "ok":
            await asyncio.to_thread(self.store.save_feed_states, [result.state])
            return
        self.summary.items_seen += len(result.items)
        fresh = await asyncio.to_thread(self.store.unseen, list(result.items))
        new = [i for i in fresh if i.doc_id not in self.claimed]
        self.claimed.update(i.doc_id for i in new)
        self.summary.items_new += len(new)
        self.progress.items_planned(len(new))
        self.page_attempts.update(state.page_attempts)
        # stopped half-way here (a signal, the run deadline), the feed keeps its previous state, whose
        # validators belong to an older body: the next poll reads this body again and finishes it
        outcomes = await asyncio.gather(*(self.handle_item(http, item) for item in new))
        await self.flush()
        failing = {i.doc_id: state.page_attempts.get(i.doc_id, 0) + 1 for i, ok in zip(new, outcomes) if not ok}
        state = replace_state(result.state, page_attempts=failing, last_new_at=utcnow() if new else state.last_new_at)
        if not all(outcomes) or any(i.doc_id in self.store_failed for i in new):
            # keep no validators: the next poll must read the whole feed again to retry these items
            state = replace_state(state, etag=None, last_modified=None, body_hash=None)
        await asyncio.to_thread(self.store.save_feed_states, [state])

    def _count_poll(self, result: PollResult) -> None:
        s = self.summary
        if result.status in {"disabled", "deferred"}:
            s.feeds_skipped += 1
            return
        s.feeds_polled += 1
        if result.status == "not-modified":
            s.feeds_not_modified += 1
        elif result.status == "unchanged":
            s.feeds_unchanged_body += 1
        elif result.status in {"failed", "gone"}:
            s.feeds_failed += 1
            self.fail("poll", result.feed.id, result.feed.url, result.error or result.status, result.transient)
        elif result.parse_warning:
            self.fail("parse", result.feed.id, result.feed.url,
                      f"feed is malformed, kept the {len(result.items)} entries that parsed: {result.parse_warning}",
                      False)

    async def handle_item(self, http: HttpClient, item: FeedItem) -> bool:
        """Fetch, extract and queue one item; False when it must be retried in a later run."""
        try:
            return await self._handle_item(http, item)
        except StoreError:
            raise
        except Exception as exc:  # a bug or a library's surprise: this item is retried, the run goes on
            log.exception("handling %s (%s) failed unexpectedly", redact_url(item.url), item.feed_id)
            self.fail("fetch", item.feed_id, item.url, f"unexpected {type(exc).__name__}: {exc}; will retry next run",
                      True)
            self.progress.item_done()
            return False

    async def _handle_item(self, http: HttpClient, item: FeedItem) -> bool:
        async with self.page_slots:
            html, final_url, charset, reason = None, item.url, None, None
            t0 = time.perf_counter()
            try:
                tries = self.page_attempts.get(item.doc_id, 0)
                if tries >= MAX_PAGE_ATTEMPTS:
                    # a page that times out or answers 5xx run after run would cost every run its wait
                    raise FetchError(f"{item.url}: the page failed in {tries} runs in a row; not fetched again")
                page = await http.get(item.url, max_bytes=self.settings.max_page_bytes, headers=_PAGE_ACCEPT)
                if page.content_type not in _HTML_TYPES:
                    raise FetchError(f"{item.url}: not an HTML page (Content-Type {page.content_type})")
                html, final_url, charset = page.content, page.url, page.charset
                self.summary.pages_fetched += 1
            except TransientError as exc:
                self.summary.pages_failed += 1
                self.fail("fetch", item.feed_id, item.url, f"{exc}; will retry next run", True)
                self.progress.item_done()
                return False
            except FetchError as exc:
                self.summary.pages_failed += 1
                if exc.status in (404, 410) and _just_published(item):
                    # feeds often list an article minutes before its page is up: try again next run,
                    # rather than keep the feed's summary for ever
                    self.fail("fetch", item.feed_id, item.url, f"{exc} for an entry published "
                              f"{item.published_at:%H:%M}Z: the page may not be up yet; will retry next run", True)
                    self.progress.item_done()
                    return False
                reason = f"page not used: {exc}"
                if not (item.title or item.summary):
                    self.fail("fetch", item.feed_id, item.url, f"{exc}; the feed entry has no text either", False)
                    self.progress.item_done()
                    return True
                self.fail("fetch", item.feed_id, item.url, f"{exc}; stored the feed's summary", False)
            finally:
                self.summary.add_time("fetch", time.perf_counter() - t0)
            job = PageJob(item=item, html=html, final_url=final_url, charset=charset, fetched_at=utcnow(),
                          fallback_reason=reason, min_text_chars=self.settings.min_text_chars,
                          max_text_chars=self.settings.max_text_chars,
                          languages=self.settings.languages,
                          language_sample_chars=self.settings.language_sample_chars,
                          profile_file=str(self.settings.profile_file) if self.settings.profile_file else None)
            try:
                document, timings = await self.in_worker(build_document, job)
            except Exception as exc:  # a worker crash must not take the run down with it
                self.fail("extract", item.feed_id, item.url, f"{type(exc).__name__}: {exc}", True)
                self.progress.item_done()
                return False
            for stage, seconds in timings.items():
                self.summary.add_time(stage, seconds)
        self.pending.append(document)
        if len(self.pending) >= _WRITE_BATCH or time.monotonic() - self.last_flush >= _WRITE_EVERY_SECONDS:
            await self.flush()
        self.progress.item_done()
        return True

    async def flush(self) -> None:
        """Write the pending documents; a write once begun ends and is counted even if the run is stopped."""
        # Shielded: a signal cancels the items in flight, and a cancelled await of a write whose thread
        # goes on would store documents that the summary never counts (the next run then finds fewer
        # new items than the summary left for it).
        task = asyncio.ensure_future(self._write())
        self.writes.append(task)
        await asyncio.shield(task)

    async def finish(self) -> None:
        """Write what is pending and wait for every write in flight; raise the first one's store error."""
        await self.flush()
        await asyncio.gather(*self.writes)

    async def _write(self) -> None:
        async with self.write_lock:
            self.last_flush = time.monotonic()
            batch, self.pending = self.pending, []
            if not batch:
                return
            t0 = time.perf_counter()
            batch = await asyncio.to_thread(assign_stories, self.store, batch)
            t1 = time.perf_counter()
            self.summary.add_time("stories", t1 - t0)
            now = utcnow()
            alerts = [a for doc in batch for a in alerts_for(self.rules, doc, now)] if self.rules else []
            # documents and their outbox entries are written in one step: no alert is lost in between
            stored = await asyncio.to_thread(self.store.put_documents, batch, alerts)
            self.summary.alerts_queued += len(alerts)
            self.summary.add_time("store", time.perf_counter() - t1)
            stored_ids = set(stored)
            for doc in batch:
                if doc.id not in stored_ids:
                    self.store_failed.add(doc.id)
                    self.fail("store", doc.feed_id, doc.url, "the store refused the document; it stays unseen and "
                              "the next run retries it", True)
            self.summary.documents_stored += len(stored)
            self.summary.documents_from_summary += sum(1 for d in batch if d.extraction.value == "feed-summary")


def make_pool(settings: Settings) -> ProcessPoolExecutor:
    """Worker processes for parsing and extraction (forkserver: safe beside threads and an event loop)."""
    return workers.make_pool(settings.workers, initializer=_warm_worker, initargs=(settings.languages,))


async def run_async(settings: Settings, feeds: Sequence[Feed], store: Store, *, due_only: bool = False,
                    progress: Progress | None = None, pool: ProcessPoolExecutor | None = None,
                    stop: asyncio.Event | None = None) -> RunSummary:
    """Poll the planned feeds and carry every new item through to the store.

    Setting `stop` (the CLI does on SIGTERM and Ctrl-C) ends the run early and cleanly: work in
    flight is dropped, what is extracted already is stored, and whatever was not finished stays
    unseen for the next run; the summary says why it ended.
    """
    progress = progress or NoProgress()
    own_pool = pool is None
    pool = pool or make_pool(settings)
    started = time.perf_counter()
    job: _Run | None = None
    owner, leased = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}", set()
    try:
        states = await asyncio.to_thread(store.get_feed_states)
        now = utcnow()
        planned = plan_feeds(feeds, states, settings, due_only=due_only, now=now)
        # a lease per feed: two runs at once (a manual run beside Airflow's) never both fetch a feed
        until = now + timedelta(seconds=settings.run_deadline_seconds) + _LEASE_MARGIN
        ids = [f.id for f, _ in planned]
        dead = _dead_local_owners(await asyncio.to_thread(store.feed_leases, ids))
        leased = await asyncio.to_thread(store.claim_feeds, ids, owner, until, now, dead)
        rules = load_all_rules(settings.alerts_file, await asyncio.to_thread(store.saved_searches))
        job = _Run(settings, store, progress, pool, rules)
        job.summary.feeds_busy = len(planned) - len(leased)
        planned = [(feed, state) for feed, state in planned if feed.id in leased]
        job.summary.feeds_skipped = len(feeds) - len(planned)
        progress.feeds_planned(len(planned))
        stop = stop or asyncio.Event()
        why: list[str] = []
        deadline = asyncio.get_running_loop().call_later(settings.run_deadline_seconds, _expire, stop, why,
                                                         settings.run_deadline_seconds)
        try:
            async with HttpClient(settings) as http:
                work = asyncio.gather(*(job.handle_feed(http, feed, state) for feed, state in planned))
                await _until_stopped(work, stop, job.summary, why)
            await job.finish()
        except EnergywatchError as exc:
            # the store failed (full disk, locked, unreachable): the run ends, and its summary so far
            # travels with the error (the CLI prints it with --json)
            job.summary.finished_at = utcnow()
            job.summary.aborted = str(exc)
            exc.summary = job.summary
            raise
        finally:
            deadline.cancel()
    finally:
        if leased:
            try:
                await asyncio.to_thread(store.release_feeds, sorted(leased), owner)
            except EnergywatchError as exc:  # the leases then lapse at their end time
                log.warning("could not give back the feed leases of this run: %s", exc)
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
        for replacement in (job.new_pools if job else ()):
            replacement.shutdown(wait=True, cancel_futures=True)
    job.summary.finished_at = utcnow()
    job.summary.stage_seconds["total"] = time.perf_counter() - started
    return job.summary


def _dead_local_owners(leases: dict[str, tuple[str, datetime]]) -> list[str]:
    """Lease owners that were runs on this machine whose process is gone (killed: its leases are free).

    An owner is "host:pid:random"; one on another machine cannot be checked, and its leases lapse."""
    host, dead = socket.gethostname(), []
    for owner, _ in leases.values():
        owner_host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(owner)
        except PermissionError:  # alive, another user's
            pass
    return sorted(set(dead))


def _expire(stop: asyncio.Event, why: list[str], seconds: float) -> None:
    why.append(f"the run deadline of {seconds:.0f} s (ENERGYWATCH_RUN_DEADLINE_SECONDS) was reached")
    stop.set()


async def _until_stopped(work: asyncio.Future[Any], stop: asyncio.Event, summary: RunSummary,
                         why: list[str]) -> None:
    """Await the run's work until `stop` is set; then cancel what is in flight and say why in the summary."""
    waiter = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        waiter.cancel()
        work.result()
        return
    work.cancel()
    results = await asyncio.gather(work, return_exceptions=True)
    for result in results:
        if isinstance(result, EnergywatchError):
            raise result
    reason = why[0] if why else "stopped by a signal"
    summary.aborted = f"{reason}: what was extracted is stored, the rest is left for the next run"


def run(settings: Settings, feeds: Sequence[Feed], store: Store, *, due_only: bool = False,
        progress: Progress | None = None) -> RunSummary:
    """Synchronous entry point for one run (CLI, Airflow tasks)."""
    return asyncio.run(run_async(settings, feeds, store, due_only=due_only, progress=progress))
