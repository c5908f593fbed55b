"""Backends for the contract suite: SQLite always; Elasticsearch when ELASTICSEARCH_URL is set."""

from __future__ import annotations

import os
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
    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        pytest.skip("ELASTICSEARCH_URL is not set: the Elasticsearch contract run needs a server "
                    "(e.g. ELASTICSEARCH_URL=http://elastic:changeme@localhost:9200)")
    from energywatch.store.elasticsearch import ElasticsearchStore

    store = ElasticsearchStore.from_url(url, prefix=f"ew-test-{uuid.uuid4().hex[:8]}", refresh=True)
    yield store
    store.drop_all()
    store.close()
