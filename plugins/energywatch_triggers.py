"""The event trigger behind the event-driven ingestion DAG (energywatch_events).

It runs in the triggerer's event loop: every `poll_seconds` it sends one conditional GET per feed
(a 304, or the body the last ingestion stored, costs no parsing) and fires an event naming the feeds
whose body changed. The Asset it watches then schedules `energywatch_events`, which ingests those
feeds only. The work is `energywatch.orchestration.check_changed_feeds`; this file only adapts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


class NewFeedItemsTrigger(BaseEventTrigger):
    """Fires {"feeds": [ids]} whenever feeds have something new to ingest."""

    def __init__(self, poll_seconds: float = 60.0, store_conn_id: str = "energywatch_store") -> None:
        super().__init__()
        self.poll_seconds = poll_seconds
        self.store_conn_id = store_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # only the connection's id: the store URL (with its password) never enters Airflow's database
        return ("energywatch_triggers.NewFeedItemsTrigger",
                {"poll_seconds": self.poll_seconds, "store_conn_id": self.store_conn_id})

    async def _store_url(self) -> str | None:
        from airflow.sdk.bases.hook import BaseHook

        try:
            connection = await BaseHook.aget_connection(self.store_conn_id)
        except Exception:  # not defined: ENERGYWATCH_STORE applies, as in the tasks
            return None
        return connection.get_uri() if connection else None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from energywatch.orchestration import check_changed_feeds

        reported: dict[str, str] = {}
        while True:
            try:
                changed = await check_changed_feeds(reported, store_url=await self._store_url())
            except Exception as exc:  # the store or the feed list is broken: say so and keep watching
                log.error("checking the feeds failed: %s", exc)
                changed = []
            if changed:
                log.info("feeds with new items: %s", ", ".join(changed))
                yield TriggerEvent({"feeds": changed})
            await asyncio.sleep(self.poll_seconds)
