"""Which feeds a run polls, and the feed-state helpers that decide it: light enough for any process.

Kept apart from feeds.py (feedparser, lxml, the HTTP client) so that planning a run, as Airflow's
`plan` task does, imports none of the fetching and extraction stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from energywatch.models import Feed, FeedState

if TYPE_CHECKING:
    from energywatch.config import Settings


def initial_state(feed: Feed) -> FeedState:
    """A blank state for a feed never polled."""
    return FeedState(feed_id=feed.id, url=feed.url)


def is_due(feed: Feed, state: FeedState, now: datetime, default_interval_minutes: int) -> bool:
    """Whether a feed should be polled now: enabled, not deferred, its interval elapsed."""
    if not feed.enabled or state.disabled:
        return False
    if state.retry_after_until and now < state.retry_after_until:
        return False
    if state.last_polled_at is None:
        return True
    return now - state.last_polled_at >= poll_interval(feed, state, default_interval_minutes)


# a failing feed waits its interval times 2 per consecutive failure, up to this: a dead feed costs
# one request a day, not one every run, and is polled again as soon as it answers
MAX_BACKOFF = timedelta(days=1)


def poll_interval(feed: Feed, state: FeedState, default_interval_minutes: int) -> timedelta:
    """The wait before the next poll: the feed's interval, doubled for each consecutive failure."""
    interval = timedelta(minutes=feed.interval_minutes or default_interval_minutes)
    if not state.consecutive_failures:
        return interval
    return min(interval * 2 ** min(state.consecutive_failures, 20), max(MAX_BACKOFF, interval))


def replace_state(state: FeedState, **changes: Any) -> FeedState:
    """A copy of a feed state with some fields changed (validated)."""
    return FeedState.model_validate({**state.model_dump(), **changes})


def plan_feeds(feeds: Sequence[Feed], states: dict[str, FeedState], settings: Settings, *,
               due_only: bool, now: datetime) -> list[tuple[Feed, FeedState]]:
    """The feeds this run polls: enabled ones, and with due_only only those whose interval elapsed."""
    planned = []
    for feed in feeds:
        state = states.get(feed.id) or initial_state(feed)
        if state.url != feed.url:
            # the configured URL changed: forget validators and discovery made for the old one
            state = initial_state(feed)
        if not feed.enabled:
            continue
        if due_only and not is_due(feed, state, now, settings.default_interval_minutes):
            continue
        planned.append((feed, state))
    return planned
