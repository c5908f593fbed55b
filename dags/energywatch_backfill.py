"""Backfill by hand: re-poll chosen feeds in full and re-enrich their documents since a date.

Trigger with params, e.g. {"feed_ids": ["bbc-world"], "since": "2026-11-01"} or
{"feed_ids": ["all"], "since": "2026-11-01"}. Nothing is stored twice: documents are upserts by id.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, dag, task
from energywatch_common import DAG_ARGS, DEFAULT_ARGS, store_url


@dag(
    dag_id="energywatch_backfill",
    schedule=None,
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=4)},
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "feed_ids": Param(["all"], type="array", items={"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
                          minItems=1, description='feed ids from the feed list, or ["all"]'),
        "since": Param("2026-01-01", type="string", format="date",
                       description="re-enrich documents published on or after this day (YYYY-MM-DD)"),
    },
)
def energywatch_backfill() -> None:
    @task(retries=0)
    def backfill(params: dict | None = None) -> dict:
        from energywatch.orchestration import backfill as run_backfill

        params = params or {}
        ids = list(params["feed_ids"])
        since = datetime.fromisoformat(params["since"]).replace(tzinfo=timezone.utc)
        return run_backfill(None if ids == ["all"] else ids, since, store_url=store_url())

    backfill()


energywatch_backfill()
