"""Scheduled ingestion: plan due feeds → ingest batches in parallel (mapped) → record → announce (the Asset).

Top-level code stays light: no I/O and no energywatch import at parse time; every task calls a
function of energywatch.orchestration with feed ids or counts.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, task
from energywatch_common import DAG_ARGS, DEFAULT_ARGS, DOCUMENTS, store_url

# schedule and batch size change without editing code: environment variables of the dag-processor,
# read at parse time (no I/O); the schedule is a cron string or a preset such as "@hourly"
SCHEDULE = os.environ.get("ENERGYWATCH_INGEST_SCHEDULE", "*/10 * * * *")
BATCH_SIZE = int(os.environ.get("ENERGYWATCH_FEEDS_PER_TASK", "10"))
FETCH_POOL = os.environ.get("ENERGYWATCH_FETCH_POOL", "energywatch_fetch")


@dag(
    dag_id="energywatch_ingest",
    schedule=SCHEDULE,
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    **DAG_ARGS,
    params={"due_only": Param(True, type="boolean",
                              description="poll only feeds whose interval has elapsed (false: poll every feed now)")},
)
def energywatch_ingest() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def plan(params: dict | None = None) -> list[list[str]]:
        from energywatch.orchestration import plan_batches

        due_only = bool((params or {}).get("due_only", True))
        return plan_batches(BATCH_SIZE, store_url=store_url(), due_only=due_only)

    @task(pool=FETCH_POOL, max_active_tis_per_dagrun=8)
    def ingest(feed_ids: list[str]) -> dict:
        from energywatch.orchestration import ingest_batch

        return ingest_batch(feed_ids, store_url=store_url())

    # runs when no feed was due too (the mapped task is then skipped): the summary is still recorded
    @task(retries=0, trigger_rule="none_failed")
    def record(batches: list[dict] | None) -> dict:
        from energywatch.orchestration import combine

        return combine(list(batches or []))

    # the alerting DAG is scheduled on this Asset, so it is emitted only when documents were stored:
    # an idle run (nothing due, nothing new) skips it instead of starting an alerts run for nothing
    @task(outlets=[DOCUMENTS], retries=0)
    def announce(totals: dict, **context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        if not totals.get("documents_stored"):
            raise AirflowSkipException("no new documents: the Asset is not updated")
        context["outlet_events"][DOCUMENTS].extra = totals
        return totals

    announce(record(ingest.expand(feed_ids=plan())))

energywatch_ingest()
