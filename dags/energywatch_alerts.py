"""Alert delivery, scheduled on the Asset the ingest DAG emits: sends what the outbox holds.

Matching happens when documents are stored (in the same step as the outbox write), so this DAG only
delivers: a channel that is down delays alerts, the next run retries them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from energywatch_common import DAG_ARGS, DEFAULT_ARGS, DOCUMENTS, channel_secrets, store_url


@dag(
    dag_id="energywatch_alerts",
    schedule=[DOCUMENTS],
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=10)},
    doc_md=__doc__,
    **DAG_ARGS,
)
def energywatch_alerts() -> None:
    @task
    def deliver(**context) -> dict:
        from energywatch.orchestration import deliver_alerts

        return deliver_alerts(store_url=store_url(), secrets=channel_secrets())

    deliver()


energywatch_alerts()
