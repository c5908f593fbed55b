"""Elasticsearch-only behaviour, against a live node (ELASTICSEARCH_URL or the test distribution)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from energywatch.errors import StoreError
from energywatch.models import SearchQuery
from energywatch.store.elasticsearch import ElasticsearchStore, available_analyzers, client_from_url
from energywatch.store.es_mapping import template_body
from store.test_contract import EN, RU, doc


@pytest.fixture
def prefix(elasticsearch_url: str) -> Iterator[str]:
    name = f"ew-live-{uuid.uuid4().hex[:8]}"
    yield name
    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=name, replicas=0)
    store.drop_all()
    store.close()


def test_documents_are_never_written_to_a_concrete_index_in_place_of_the_alias(elasticsearch_url: str,
                                                                             prefix: str) -> None:
    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        store.client.indices.delete_alias(index=store.index, name=store.alias)
        assert store.put_documents([RU]) == []  # refused, reported, left unseen for the next run
        assert not store.client.indices.exists(index=store.alias)  # no auto-created index of that name
    finally:
        store.close()


def test_an_added_field_reaches_the_live_index(elasticsearch_url: str, prefix: str) -> None:
    # the index as an older release made it: without the lsh_bands field, its template an older version
    client = client_from_url(elasticsearch_url)
    body = template_body(f"{prefix}-documents-v*", shards=1, replicas=0, refresh_interval="1s",
                         analyzers=available_analyzers(client))
    del body["template"]["mappings"]["properties"]["lsh_bands"]
    body["_meta"]["mapping_version"] = body["template"]["mappings"]["_meta"]["mapping_version"] = "older"
    client.indices.put_index_template(name=f"{prefix}-documents", **body)
    client.indices.create(index=f"{prefix}-documents-v1", aliases={f"{prefix}-documents": {"is_write_index": True}})
    client.close()
    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        banded = EN.model_copy(update={"lsh_bands": ("0:abc",)})
        assert store.put_documents([banded]) == [EN.id]  # the strict mapping knows the field now
        store.prepare_lookups()
        assert [d.id for d in store.find_by_bands(["0:abc"])] == [EN.id]
    finally:
        store.close()


def test_paging_past_the_result_window_says_what_to_do(elasticsearch_url: str, prefix: str) -> None:
    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        store.put_documents([doc(60, title="t", text="gas", lang="en")])
        assert store.search(SearchQuery(text="gas", offset=9_980, limit=20)).hits == ()
        with pytest.raises(StoreError, match="first 10,000 .*narrow the search"):
            store.search(SearchQuery(text="gas", offset=9_990, limit=20))
    finally:
        store.close()


def test_an_alert_waits_for_its_document(elasticsearch_url: str, prefix: str) -> None:
    from datetime import timedelta

    from energywatch.models import Alert
    from store.test_contract import T0

    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        alert = Alert(id="w1", rule="r", channel="hook", story_id=RU.id, doc_id=RU.id, title="t",
                      url="https://x.example/", source="S", created_at=T0, due_at=T0)
        store.client.indices.delete_alias(index=store.index, name=store.alias)
        assert store.put_documents([RU], [alert]) == []  # the document is refused, the outbox entry is kept
        store.client.indices.put_alias(index=store.index, name=store.alias)
        assert store.due_alerts(T0 + timedelta(minutes=1)) == []  # no alert about a document not stored
        assert store.put_documents([RU], [alert]) == [RU.id]  # the next run stores it
        assert [a.id for a in store.due_alerts(T0 + timedelta(minutes=1))] == ["w1"]
    finally:
        store.close()
