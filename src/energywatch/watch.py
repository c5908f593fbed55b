"""`energywatch watch`: one long-running process that polls every feed on a schedule learned from its
history, carries new items through the pipeline at once on a warm worker pool, and delivers alerts as
soon as their documents are stored.

Each poll is a small run (`pipeline.run_async` over the feeds due in the same second) on the pool the
watcher keeps warm, so everything a run guarantees holds here too: conditional GET, feed leases in the
store (a second watcher, or a cron `energywatch run`, never polls a feed at the same time), documents
and their outbox entries written in one transaction, Retry-After and back-off. After each run, and
whenever a held alert falls due, the outbox is delivered: an alert survives a crash between store and
send, and goes out exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from energywatch.config import Settings, load_feeds
from energywatch.errors import ConfigError, EnergywatchError, StoreError
from energywatch.metrics import WatchMetrics
from energywatch.models import Feed, FeedState, utcnow
from energywatch.schedule import initial_state, poll_interval
from energywatch.store.base import Store

log = logging.getLogger(__name__)
JITTER = 0.1  # ± this share of each interval: 200 feeds added at once do not stay in lock-step
MAX_RUNS_IN_FLIGHT = 4  # small runs at once; a slow feed never holds up the others' schedule
LOOKAHEAD = 5.0  # seconds: feeds due this soon are polled with the one due now


def watch_interval(feed: Feed, state: FeedState, now: datetime, settings: Settings) -> float:
    """Seconds until a feed's next poll, learned from when it last brought something new.

    A feed is polled about four times as often as the time since its last new item: a feed that
    published a minute ago every `watch_min_interval_seconds`, one quiet for hours every
    `watch_max_interval_seconds` (a feed's own `interval_minutes` caps it). Failures back off as
    in a run, and a Retry-After is honoured."""
    if state.consecutive_failures:
        return poll_interval(feed, state, settings.default_interval_minutes).total_seconds()
    low, high = settings.watch_min_interval_seconds, settings.watch_max_interval_seconds
    if feed.interval_minutes:
        high = min(high, max(low, feed.interval_minutes * 60))
    quiet = (now - state.last_new_at).total_seconds() if state.last_new_at else high * 4
    return min(high, max(low, quiet / 4))


class FeedStatus(BaseModel):
    """One feed as `energywatch status` shows it."""

    feed: str
    enabled: bool
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_new_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    interval_seconds: int
    next_poll_at: datetime | None  # None: disabled


def feed_status(feeds: Sequence[Feed], states: dict[str, FeedState], now: datetime,
                settings: Settings) -> list[FeedStatus]:
    """Each feed's last poll, success and new item, and when `watch` polls it next."""
    rows = []
    for feed in feeds:
        state = states.get(feed.id) or initial_state(feed)
        interval = watch_interval(feed, state, now, settings)
        enabled = feed.enabled and not state.disabled
        next_at = (state.last_polled_at + timedelta(seconds=interval)) if state.last_polled_at else now
        if state.retry_after_until and next_at < state.retry_after_until:
            next_at = state.retry_after_until
        rows.append(FeedStatus(feed=feed.id, enabled=enabled, last_polled_at=state.last_polled_at,
                               last_success_at=state.last_success_at, last_new_at=state.last_new_at,
                               last_error=state.last_error, consecutive_failures=state.consecutive_failures,
                               interval_seconds=round(interval), next_poll_at=next_at if enabled else None))
    return rows


class Watcher:
    """Polls due feeds, runs them through the pipeline and delivers alerts until `stop` is set."""

    def __init__(self, settings: Settings, store: Store, *, stop: asyncio.Event,
                 feeds: Sequence[Feed] | None = None, metrics: WatchMetrics | None = None) -> None:
        self.settings = settings
        self.store = store
        self.stop = stop
        self.metrics = metrics
        self._fixed_feeds = list(feeds) if feeds is not None else None
        self._feeds: dict[str, Feed] = {}
        self._feeds_mtime: float | None = None
        self._next: dict[str, float] = {}  # feed id → monotonic time of its next poll
        self._in_flight: set[str] = set()
        self._runs: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._random = random.Random()
        self._rules: Any = None
        self._rules_mtime: float | None = None

    # feeds and rules, reloaded when their files change ---------------------------------------------
    def _reload(self) -> None:
        if self._fixed_feeds is not None:
            if not self._feeds:
                self._feeds = {f.id: f for f in self._fixed_feeds}
            return
        path = self.settings.feeds_file
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            if not self._feeds:
                raise ConfigError(f"feed list {path} cannot be read: {exc}") from exc
            log.warning("feed list %s cannot be read (%s): watching the %d feeds loaded before", path, exc,
                        len(self._feeds))
            return
        if mtime == self._feeds_mtime:
            return
        try:
            feeds = load_feeds(path)
        except ConfigError as exc:
            if not self._feeds:
                raise
            log.error("feed list %s changed but is invalid, still watching the previous list: %s", path, exc)
            self._feeds_mtime = mtime
            return
        added = {f.id for f in feeds} - set(self._feeds)
        removed = set(self._feeds) - {f.id for f in feeds}
        if self._feeds_mtime is not None:
            log.warning("feed list %s reloaded: %d feeds (%d added, %d removed)", path, len(feeds), len(added),
                        len(removed))
        self._feeds = {f.id: f for f in feeds}
        self._feeds_mtime = mtime
        for feed_id in removed:
            self._next.pop(feed_id, None)

    def _alert_rules(self) -> Any:
        from energywatch.alerts.rules import load_rules

        path = self.settings.alerts_file
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if mtime != self._rules_mtime:
            try:
                self._rules = load_rules(path)
            except ConfigError as exc:
                log.error("alert rules %s are invalid, keeping the previous ones: %s", path, exc)
            self._rules_mtime = mtime
        return self._rules

    # scheduling --------------------------------------------------------------------------------------
    def _schedule(self, states: dict[str, FeedState]) -> None:
        """Give every feed without a next poll time one, from its stored state."""
        now, clock = utcnow(), time.monotonic()
        for feed in self._feeds.values():
            if feed.id in self._next or feed.id in self._in_flight:
                continue
            state = states.get(feed.id) or initial_state(feed)
            if not feed.enabled or state.disabled:
                self._next[feed.id] = float("inf")
                continue
            wait = 0.0
            if state.last_polled_at is not None:
                wait = watch_interval(feed, state, now, self.settings) - (now - state.last_polled_at).total_seconds()
            if state.retry_after_until:
                wait = max(wait, (state.retry_after_until - now).total_seconds())
            self._next[feed.id] = clock + max(0.0, wait * (1 + self._random.uniform(-JITTER, JITTER)))

    def _due(self) -> list[Feed]:
        # feeds due within the next few seconds join this run: one run's fixed cost (reading the
        # states, leases, a client) shared by many polls made 200 idle feeds cost 4× less CPU
        now = time.monotonic()
        if not any(at <= now for at in self._next.values()):
            return []
        soon = now + min(LOOKAHEAD, self.settings.watch_min_interval_seconds / 10)
        return [self._feeds[i] for i, at in self._next.items() if at <= soon and i in self._feeds]

    # the loop ----------------------------------------------------------------------------------------
    async def run(self, pool: Any) -> None:
        """Until stopped: start a run for the feeds that are due, deliver alerts, sleep until the next due."""
        self._reload()
        self._schedule(await asyncio.to_thread(self.store.get_feed_states))
        log.warning("watching %d feeds (polls every %d–%d s, by how recently each brought something new)",
                    len(self._feeds), self.settings.watch_min_interval_seconds,
                    self.settings.watch_max_interval_seconds)
        await self._deliver()  # what a previous watcher stored and did not send
        next_delivery = await self._next_alert_due()
        while not self.stop.is_set():
            self._reload()
            if any(i not in self._next and i not in self._in_flight for i in self._feeds):
                self._schedule(await asyncio.to_thread(self.store.get_feed_states))
            due = [f for f in self._due() if f.id not in self._in_flight]
            if due:
                due = await self._not_polled_elsewhere(due)
            if self.metrics:
                self.metrics.runs_in_flight.set(len(self._runs))
                self.metrics.feeds_waiting.set(len(due) if len(self._runs) >= MAX_RUNS_IN_FLIGHT else 0)
            if due and len(self._runs) < MAX_RUNS_IN_FLIGHT:
                for feed in due:
                    self._next.pop(feed.id, None)
                    self._in_flight.add(feed.id)
                task = asyncio.create_task(self._poll(pool, due))
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
            if next_delivery is not None and next_delivery <= utcnow():
                await self._deliver()
                next_delivery = await self._next_alert_due()
            timeout = self._sleep_for(next_delivery)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            if self._wake.is_set():
                next_delivery = await self._next_alert_due()
        # SIGTERM: the runs in flight finish what they extracted (their own stop) and store it
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        await self._deliver()

    async def _not_polled_elsewhere(self, due: list[Feed]) -> list[Feed]:
        """The due feeds no other watcher (or run) has polled since: the others are rescheduled from
        the state that poll left, so two watchers on one store share the polling instead of doubling it."""
        try:
            states = await asyncio.to_thread(self.store.get_feed_states)
        except EnergywatchError as exc:
            log.error("reading the feed states failed: %s", exc)
            return due
        now, clock, fresh = utcnow(), time.monotonic(), []
        for feed in due:
            state = states.get(feed.id) or initial_state(feed)
            if state.last_polled_at is None:
                fresh.append(feed)
                continue
            wait = watch_interval(feed, state, now, self.settings) * (1 - JITTER) - (now - state.last_polled_at
                                                                                   ).total_seconds()
            if wait <= 0:
                fresh.append(feed)
            else:
                self._next[feed.id] = clock + wait
        return fresh

    def _sleep_for(self, next_delivery: datetime | None) -> float:
        clock = time.monotonic()
        waits = [at - clock for i, at in self._next.items() if i not in self._in_flight]
        if next_delivery is not None:
            waits.append((next_delivery - utcnow()).total_seconds())
        # never longer than a second: a changed feed list and a stop are noticed within one
        return min([1.0, *waits]) if waits else 1.0

    async def _poll(self, pool: Any, feeds: list[Feed]) -> None:
        from energywatch.pipeline import run_async

        try:
            summary = await run_async(self.settings, feeds, self.store, pool=pool, stop=self.stop)
        except StoreError as exc:
            # the store is down (a full disk, Elasticsearch unreachable): try these feeds again in a
            # minute; what was not stored stays unseen
            log.error("the store failed while watching %s: %s", ", ".join(f.id for f in feeds), exc)
            summary = None
        except Exception:  # a bug must not end a process meant to run for months
            log.exception("watching %s failed unexpectedly", ", ".join(f.id for f in feeds))
            summary = None
        finally:
            for feed in feeds:
                self._in_flight.discard(feed.id)
        if summary is not None and self.metrics:
            self.metrics.run_done(summary)
        try:
            states = await asyncio.to_thread(self.store.get_feed_states)
        except EnergywatchError as exc:
            log.error("reading the feed states failed: %s", exc)
            states = {}
        now, clock = utcnow(), time.monotonic()
        for feed in feeds:
            if feed.id not in self._feeds:
                continue
            state = states.get(feed.id) or initial_state(feed)
            wait = watch_interval(feed, state, now, self.settings) if summary is not None else 60.0
            if state.retry_after_until:
                wait = max(wait, (state.retry_after_until - now).total_seconds())
            self._next[feed.id] = clock + wait * (1 + self._random.uniform(-JITTER, JITTER))
            if state.last_success_at and self.metrics:
                self.metrics.last_success.labels(feed.id).set(state.last_success_at.timestamp())
        if summary is not None and summary.alerts_queued:
            await self._deliver()
        self._wake.set()

    async def _deliver(self) -> None:
        rules = self._alert_rules()
        if rules is None:
            return
        from energywatch.alerts.outbox import deliver

        try:
            report = await asyncio.to_thread(deliver, self.store, rules, utcnow())
        except EnergywatchError as exc:
            log.error("alert delivery failed: %s", exc)
            return
        if self.metrics:
            self.metrics.alerts_sent(report.latencies)

    async def _next_alert_due(self) -> datetime | None:
        """When the earliest pending alert falls due (held ones: batch windows, quiet periods, retries)."""
        if self._alert_rules() is None:
            return None
        try:
            return await asyncio.to_thread(_earliest_pending, self.store)
        except EnergywatchError as exc:
            log.error("reading the alert outbox failed: %s", exc)
            return utcnow() + timedelta(seconds=30)


def _earliest_pending(store: Store) -> datetime | None:
    # due_alerts asks "due by then": far in the future, it lists every pending alert
    pending = store.due_alerts(utcnow() + timedelta(days=3650))
    times = [max(a.due_at, a.next_attempt_at or a.due_at) for a in pending]
    return min(times) if times else None



async def changed_feeds(settings: Settings, feeds: Sequence[Feed], states: dict[str, FeedState],
                        reported: dict[str, str]) -> list[str]:
    """Ids of the feeds whose body changed since they were last ingested: one conditional GET each, no parsing.

    For an event trigger (Airflow's triggerer): a 304, or a body whose hash is the one the last
    ingestion stored, costs no parsing; a changed body is reported once (`reported`, feed id → the
    body hash already reported, is updated), until an ingestion stores a new state for the feed.
    Feeds that fail are left to the ingestion's own error handling and back-off."""
    from energywatch.errors import FetchError, TransientError
    from energywatch.feeds import fetch_feed, hash_body
    from energywatch.http import HttpClient

    now = utcnow()
    due = []
    for feed in feeds:
        state = states.get(feed.id) or initial_state(feed)
        if not feed.enabled or state.disabled or (state.retry_after_until and now < state.retry_after_until):
            continue
        due.append((feed, state))

    async def check(http: HttpClient, feed: Feed, state: FeedState) -> str | None:
        try:
            response = await fetch_feed(http, state.discovered_url or feed.url, state, settings.max_feed_bytes)
        except (FetchError, TransientError) as exc:
            log.info("feed %s not checked: %s", feed.id, exc)
            return None
        if response.status == 304:
            return None
        digest = hash_body(response.content)
        if digest in (state.body_hash, reported.get(feed.id)):
            return None
        reported[feed.id] = digest
        return feed.id

    async with HttpClient(settings) as http:
        found = await asyncio.gather(*(check(http, feed, state) for feed, state in due))
    return sorted(f for f in found if f)
