"""What the Airflow DAGs call: plan batches, ingest a batch, summarise a run, backfill.

Everything here takes and returns small plain values (feed ids, counts), so that tasks pass only
those through XCom; nothing in this module imports Airflow.

Each function imports what it needs when called: every Airflow task is a process of its own, and
importing the whole pipeline (HTTP client, feed parser, extraction, enrichment) to sum a few counts
cost each task ~1 s of CPU. `record` now imports nothing beyond this module; `plan` the settings,
the feed schedule and the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from energywatch.config import Settings
    from energywatch.models import Feed, RunSummary

log = logging.getLogger(__name__)
COUNTS = ("feeds_polled", "feeds_not_modified", "feeds_failed", "items_new", "documents_stored", "pages_failed")


def _settings(store_url: str | None) -> Settings:
    from energywatch.config import load_settings

    return load_settings(store=store_url)


def plan_batches(batch_size: int = 10, *, store_url: str | None = None, due_only: bool = True) -> list[list[str]]:
    """Feed ids due for polling, cut into batches for dynamic task mapping."""
    from energywatch.config import load_feeds
    from energywatch.errors import ConfigError
    from energywatch.models import utcnow
    from energywatch.schedule import plan_feeds
    from energywatch.store import open_store

    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    settings = _settings(store_url)
    feeds = load_feeds(settings.feeds_file)
    store = open_store(settings.store)
    try:
        planned = plan_feeds(feeds, store.get_feed_states(), settings, due_only=due_only, now=utcnow())
    finally:
        store.close()
    ids = [feed.id for feed, _ in planned]
    return [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]


def _select(feeds: Sequence[Feed], feed_ids: Sequence[str]) -> list[Feed]:
    from energywatch.errors import ConfigError

    known = {f.id: f for f in feeds}
    unknown = [i for i in feed_ids if i not in known]
    if unknown:
        raise ConfigError(f"unknown feed id(s) {', '.join(unknown)}: they are not in the feed list")
    return [known[i] for i in feed_ids]


def ingest_batch(feed_ids: Sequence[str], *, store_url: str | None = None) -> dict[str, Any]:
    """Poll, fetch, extract, enrich and store one batch of feeds; return its counts."""
    from energywatch.config import load_feeds
    from energywatch.pipeline import run
    from energywatch.store import open_store

    settings = _settings(store_url)
    feeds = _select(load_feeds(settings.feeds_file), feed_ids)
    store = open_store(settings.store)
    try:
        summary = run(settings, feeds, store)
    finally:
        store.close()
    for failure in summary.failures:
        log.warning("%s failed for %s (%s): %s", failure.stage, failure.url, failure.feed_id, failure.reason)
    return summarise(summary)


def summarise(summary: RunSummary) -> dict[str, Any]:
    """The small dictionary a task returns: counts and failures, never documents."""
    counts: dict[str, Any] = {name: getattr(summary, name) for name in COUNTS}
    counts["failures"] = len(summary.failures)
    counts["seconds"] = round(summary.stage_seconds.get("total", 0.0), 2)
    return counts


def combine(batches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the batches of one run."""
    totals: dict[str, Any] = {name: 0 for name in (*COUNTS, "failures")}
    for batch in batches:
        for name in totals:
            totals[name] += int(batch.get(name, 0))
    totals["batches"] = len(batches)
    totals["finished_at"] = datetime.now(timezone.utc).isoformat()
    return totals


def backfill(feed_ids: Sequence[str] | None, since: datetime, *, store_url: str | None = None) -> dict[str, Any]:
    """Re-poll feeds from scratch and re-enrich their documents published since a date; nothing is doubled."""
    from energywatch.config import load_feeds
    from energywatch.pipeline import rescore, run
    from energywatch.schedule import initial_state, replace_state
    from energywatch.store import open_store

    settings = _settings(store_url)
    all_feeds = load_feeds(settings.feeds_file)
    feeds = all_feeds if not feed_ids else _select(all_feeds, feed_ids)
    store = open_store(settings.store)
    try:
        states = store.get_feed_states()
        # forget validators and body hashes so every chosen feed is read in full again
        store.save_feed_states([
            replace_state(states.get(f.id) or initial_state(f), etag=None, last_modified=None, body_hash=None,
                          retry_after_until=None)
            for f in feeds
        ])
        summary = run(settings, feeds, store)
        checked, changed = rescore(store, settings, feed_ids={f.id for f in feeds}, since=since)
    finally:
        store.close()
    counts = summarise(summary)
    counts.update({"feeds": len(feeds), "documents_rechecked": checked, "documents_reenriched": changed})
    return counts


def deliver_alerts(*, store_url: str | None = None, secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """Send the due alerts of the outbox; return the counts (the alerts DAG calls this)."""
    from energywatch.alerts.outbox import deliver
    from energywatch.alerts.rules import load_rules
    from energywatch.models import utcnow
    from energywatch.store import open_store

    settings = _settings(store_url)
    if not settings.alerts_file.exists():
        log.warning("no alert rules file at %s: nothing to deliver", settings.alerts_file)
        return {"messages_sent": 0, "alerts_sent": 0, "alerts_failed": 0, "alerts_held": 0}
    rules = load_rules(settings.alerts_file)
    store = open_store(settings.store)
    try:
        report = deliver(store, rules, utcnow(), secrets=secrets)
    finally:
        store.close()
    return {"messages_sent": report.messages_sent, "alerts_sent": report.alerts_sent,
            "alerts_failed": report.alerts_failed, "alerts_held": report.alerts_held}


async def check_changed_feeds(reported: dict[str, str], *, store_url: str | None = None) -> list[str]:
    """Ids of the feeds with a new body since their last ingestion (Airflow's event trigger calls this)."""
    import asyncio

    from energywatch.config import load_feeds
    from energywatch.store import open_store
    from energywatch.watch import changed_feeds

    settings = _settings(store_url)
    feeds = load_feeds(settings.feeds_file)

    def states() -> dict[str, Any]:
        store = open_store(settings.store)
        try:
            return store.get_feed_states()
        finally:
            store.close()

    return await changed_feeds(settings, feeds, await asyncio.to_thread(states), reported)
