"""An isolated Airflow for the DAG tests: its own AIRFLOW_HOME and SQLite metadata database.

The environment is set when this file is imported, before anything imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_HOME = Path(tempfile.mkdtemp(prefix="energywatch-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
})


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """The metadata database, created once, with the fetch pool the ingest DAG uses."""
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    initdb()
    Pool.create_or_update_pool("energywatch_fetch", slots=4, description="energywatch page fetching",
                               include_deferred=False)
    yield _HOME


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path):
    """Every DAG in dags/, parsed as the dag-processor would."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))
