"""Scheduled ingestion: plan due feeds → ingest batches in parallel (mapped) → record → announce (the Asset).

Top-level code stays light: no I/O and no energywatch import at parse time; every task calls a
function of energywatch.orchestration with feed ids or counts.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, task
from energywatch_common import DAG_ARGS, DEFAULT_ARGS, announce, ingest, record, store_url

# schedule and batch size change without editing code: environment variables of the dag-processor,
# read at parse time (no I/O); the schedule is a cron string or a preset such as "@hourly"
SCHEDULE = os.environ.get("ENERGYWATCH_INGEST_SCHEDULE", "*/10 * * * *")
BATCH_SIZE = int(os.environ.get("ENERGYWATCH_FEEDS_PER_TASK", "10"))


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

    announce(record(ingest.expand(feed_ids=plan())))


energywatch_ingest()
