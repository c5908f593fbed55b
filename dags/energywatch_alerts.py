"""Alert delivery, scheduled on the Asset the ingest DAG emits: sends what the outbox holds.

Matching happens when documents are stored (in the same step as the outbox write), so this DAG only
delivers: a channel that is down delays alerts; the task fails and Airflow retries it with back-off,
and every later run sends what is still due.
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

        counts = deliver_alerts(store_url=store_url(), secrets=channel_secrets())
        if counts["alerts_failed"]:
            # the ingest DAG emits the Asset only when documents arrive, so a channel that is down would
            # otherwise wait for the next news; Airflow's retries (with back-off) send them again
            raise RuntimeError(f"{counts['alerts_failed']} alert(s) could not be delivered; they stay in the "
                               f"outbox and this task retries: {counts}")
        return counts

    deliver()


energywatch_alerts()
