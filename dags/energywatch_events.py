"""Event-driven ingestion: the triggerer watches the feeds (conditional GETs, no parsing) and this DAG
runs as soon as some have new items, for those feeds only; a slow cron keeps it going should the
trigger stop. Enable it instead of energywatch_ingest (both on would poll twice).

Top-level code stays light: the trigger is defined in plugins/energywatch_triggers.py, and every task
calls a function of energywatch.orchestration.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset, AssetWatcher, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable
from energywatch_common import DAG_ARGS, DEFAULT_ARGS, announce, ingest, record, store_url
from energywatch_triggers import NewFeedItemsTrigger

POLL_SECONDS = float(os.environ.get("ENERGYWATCH_EVENTS_POLL_SECONDS", "60"))
SAFETY_NET = os.environ.get("ENERGYWATCH_EVENTS_SAFETY_CRON", "0 * * * *")
BATCH_SIZE = int(os.environ.get("ENERGYWATCH_FEEDS_PER_TASK", "10"))

NEW_ITEMS = Asset("energywatch://new-feed-items", watchers=[
    AssetWatcher(name="energywatch_new_feed_items", trigger=NewFeedItemsTrigger(poll_seconds=POLL_SECONDS))])


@dag(
    dag_id="energywatch_events",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(SAFETY_NET, timezone="UTC"), assets=NEW_ITEMS),
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    **{**DAG_ARGS, "max_active_runs": 4},
)
def energywatch_events() -> None:
    @task
    def plan(**context) -> list[list[str]]:
        from energywatch.orchestration import plan_batches

        feeds = sorted({f for event in context.get("triggering_asset_events", {}).get(NEW_ITEMS, [])
                        for f in (event.extra.get("payload") or {}).get("feeds", [])})
        if not feeds:  # the cron's run: every due feed, as energywatch_ingest would
            return plan_batches(BATCH_SIZE, store_url=store_url(), due_only=True)
        return [feeds[i:i + BATCH_SIZE] for i in range(0, len(feeds), BATCH_SIZE)]

    announce(record(ingest.expand(feed_ids=plan())))


energywatch_events()
