"""Backends for the contract suite: SQLite, and a live Elasticsearch (ELASTICSEARCH_URL or a test node)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from energywatch.store.base import Store


@pytest.fixture(params=["sqlite", "elasticsearch"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        from energywatch.store.sqlite import SQLiteStore

        store = SQLiteStore(tmp_path / "contract.db")
        yield store
        store.close()
        return
    url = request.getfixturevalue("elasticsearch_url")
    from energywatch.store.elasticsearch import ElasticsearchStore

    store = ElasticsearchStore.from_url(url, prefix=f"ew-test-{uuid.uuid4().hex[:8]}", refresh=True)
    yield store
    store.drop_all()
    store.close()
