"""What the energywatch DAGs share. It lives in plugins/ because Airflow 3 puts the plugins folder
(not the DAGs folder) on sys.path in every component, so the DAG files can import it."""

from __future__ import annotations

from datetime import timedelta

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
