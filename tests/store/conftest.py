"""Backends for the contract suite: SQLite, and a live Elasticsearch (ELASTICSEARCH_URL or a test node)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from energywatch.store.base import Store


@pytest.fixture(params=["sqlite", "elasticsearch"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the same fresh store again and again, as separate processes (Airflow workers) do.

    Elasticsearch runs with production settings: writes do not wait for a refresh.
    """
    opened: list[Store] = []
    if request.param == "sqlite":
        from energywatch.store.sqlite import SQLiteStore

        def open_sqlite() -> Store:
            opened.append(SQLiteStore(tmp_path / "contract.db"))
            return opened[-1]

        yield open_sqlite
    else:
        url = request.getfixturevalue("elasticsearch_url")
        from energywatch.store.elasticsearch import ElasticsearchStore

        prefix = f"ew-test-{uuid.uuid4().hex[:8]}"

        def open_es() -> Store:
            opened.append(ElasticsearchStore.from_url(url, prefix=prefix, replicas=0))
            return opened[-1]

        yield open_es
        opened[0].drop_all()
    for store in opened:
        store.close()


@pytest.fixture
def backend(opener: Callable[[], Store]) -> Store:
    """A fresh, empty store of each kind."""
    return opener()
