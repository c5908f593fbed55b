"""Feed health checks for `energywatch feeds check`: poll each feed once without touching the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone

from energywatch.config import Settings
from energywatch.feeds import initial_state, poll_feed
from energywatch.http import HttpClient
from energywatch.models import Feed


@dataclass(frozen=True)
class FeedHealth:
    """One feed's answer to a fresh, unconditional poll."""

    feed_id: str
    url: str
    language: str | None
    reachable: bool
    format: str | None
    items: int | None
    last_modified: str | None
    error: str | None

    @property
    def healthy(self) -> bool:
        """Reachable, parsed, and at least one item."""
        return self.reachable and not self.error and bool(self.items)


async def check_feeds(settings: Settings, feeds: list[Feed]) -> list[FeedHealth]:
    """Poll every feed once (no validators, nothing stored) and report what came back."""
    async with HttpClient(settings) as http:
        now = datetime.now(timezone.utc)
        results = await asyncio.gather(*(
            poll_feed(http, feed, initial_state(feed), max_bytes=settings.max_feed_bytes, now=now) for feed in feeds
        ))
    reports = []
    for feed, r in zip(feeds, results):
        reachable = r.status == "ok" or r.http_status is not None
        error = r.error or r.parse_warning
        if r.status == "ok" and not r.items and not error:
            error = "feed has no items"
        reports.append(FeedHealth(
            feed_id=feed.id, url=feed.url, language=feed.language, reachable=reachable,
            format=r.format, items=len(r.items) if r.status == "ok" else None,
            last_modified=r.last_modified, error=error,
        ))
    return reports
