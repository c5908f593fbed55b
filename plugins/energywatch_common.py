"""What the energywatch DAGs share. It lives in plugins/ because Airflow 3 puts the plugins folder
(not the DAGs folder) on sys.path in every component, so the DAG files can import it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Asset

DOCUMENTS = Asset("energywatch://documents")

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


def _url(conn) -> str | None:
    if conn is None or not conn.host:
        return None
    if conn.host.startswith(("http://", "https://")):
        return conn.host
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'https'}://{conn.host}{port}"


def channel_secrets() -> dict[str, str]:
    """Alert channel secrets from the connections energywatch_webhook, energywatch_slack and
    energywatch_smtp, under the environment names the rules file refers to."""
    secrets: dict[str, str] = {}
    webhook = _connection("energywatch_webhook")
    if _url(webhook):
        secrets["ENERGYWATCH_WEBHOOK_URL"] = _url(webhook)
    if webhook is not None and webhook.password:
        secrets["ENERGYWATCH_WEBHOOK_SECRET"] = webhook.password
    slack = _connection("energywatch_slack")
    if _url(slack):
        secrets["ENERGYWATCH_SLACK_WEBHOOK_URL"] = _url(slack)
    smtp = _connection("energywatch_smtp")
    if smtp is not None and smtp.password:
        secrets["ENERGYWATCH_SMTP_PASSWORD"] = smtp.password
    return secrets
