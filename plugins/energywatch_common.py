"""What the energywatch DAGs share. It lives in plugins/ because Airflow 3 puts the plugins folder
(not the DAGs folder) on sys.path in every component, so the DAG files can import it."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset, task

DOCUMENTS = Asset("energywatch://documents")
FETCH_POOL = os.environ.get("ENERGYWATCH_FETCH_POOL", "energywatch_fetch")

DEFAULT_ARGS = {
    "owner": "energywatch",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


# what every energywatch DAG shares: a fixed start in the past, never catch up, one run at a time
DAG_ARGS = {
    "start_date": datetime(2026, 1, 1, tzinfo=timezone.utc),
    "catchup": False,
    "max_active_runs": 1,
    "tags": ["energywatch"],
}


def connection_uri(conn_id: str) -> str | None:
    """The URI of an Airflow connection, or None when it is not defined (settings then apply)."""
    from airflow.sdk import Connection

    try:
        connection = Connection.get(conn_id)
    except Exception:  # not defined: ENERGYWATCH_* settings are the fallback, by design
        return None
    return connection.get_uri() if connection else None


def store_url() -> str | None:
    """The store from the connection energywatch_store when present."""
    return connection_uri("energywatch_store")


def _connection(conn_id: str):
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # not defined: the environment applies
        return None


def webhook_url(conn) -> str | None:
    """The URL an HTTP connection stands for, in each form users write one.

    - URI (`AIRFLOW_CONN_X=https://hooks.example.org/services/T0/B0/xyz`): Airflow keeps the scheme as
      conn_type and the path as schema;
    - JSON or UI with the whole URL as host (`{"conn_type": "http", "host": "https://…/xyz"}`);
    - HttpHook's own form: host, schema `https`, optional port and an `endpoint` in extra.
    """
    if conn is None or not conn.host:
        return None
    host = conn.host.strip()
    if host.startswith(("http://", "https://")):
        return host
    schema = (conn.schema or "").strip()
    extra = conn.extra_dejson if isinstance(getattr(conn, "extra_dejson", None), dict) else {}
    if schema.lower() in {"http", "https"}:
        protocol, path = schema.lower(), str(extra.get("endpoint") or "")
    elif (conn.conn_type or "").lower() in {"http", "https"}:
        protocol, path = conn.conn_type.lower(), schema
    else:
        protocol, path = "https", schema
    port = f":{conn.port}" if conn.port else ""
    path = path.lstrip("/")
    return f"{protocol}://{host}{port}" + (f"/{path}" if path else "")


def channel_secrets() -> dict[str, str]:
    """Alert channel secrets from the connections energywatch_webhook, energywatch_slack and
    energywatch_smtp, under the environment names the rules file refers to."""
    secrets: dict[str, str] = {}
    webhook = _connection("energywatch_webhook")
    if url := webhook_url(webhook):
        secrets["ENERGYWATCH_WEBHOOK_URL"] = url
    if webhook is not None and webhook.password:
        secrets["ENERGYWATCH_WEBHOOK_SECRET"] = webhook.password
    slack = _connection("energywatch_slack")
    if url := webhook_url(slack):
        secrets["ENERGYWATCH_SLACK_WEBHOOK_URL"] = url
    smtp = _connection("energywatch_smtp")
    if smtp is not None and smtp.password:
        secrets["ENERGYWATCH_SMTP_PASSWORD"] = smtp.password
    return secrets


# The tasks both ingestion DAGs (cron and event-driven) run after planning. Each call inside a DAG
# makes that DAG's own task, with the DAG's default arguments.
@task(pool=FETCH_POOL, max_active_tis_per_dagrun=8)
def ingest(feed_ids: list[str]) -> dict:
    """Poll one batch of feeds and store what is new."""
    from energywatch.orchestration import ingest_batch

    return ingest_batch(feed_ids, store_url=store_url())


# runs when no feed was due too (the mapped task is then skipped): the summary is still recorded
@task(retries=0, trigger_rule="none_failed")
def record(batches: list[dict] | None) -> dict:
    """Sum the batches' counts."""
    from energywatch.orchestration import combine

    return combine(list(batches or []))


# the alerting DAG is scheduled on this Asset, so it is emitted only when documents were stored:
# an idle run (nothing due, nothing new) skips it instead of starting an alerts run for nothing
@task(outlets=[DOCUMENTS], retries=0)
def announce(totals: dict, **context) -> dict:
    """Emit the documents Asset with the run's counts, when it stored any."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not totals.get("documents_stored"):
        raise AirflowSkipException("no new documents: the Asset is not updated")
    context["outlet_events"][DOCUMENTS].extra = totals
    return totals
