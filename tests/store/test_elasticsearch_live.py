"""Elasticsearch-only behaviour, against a live node (ELASTICSEARCH_URL or the test distribution)."""

from __future__ import annotations

import time
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


def test_stats_show_the_analyzers_in_use(elasticsearch_url: str) -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    result = CliRunner().invoke(app, ["stats", "--store", elasticsearch_url], env={"COLUMNS": "200"})
    store = ElasticsearchStore.from_url(elasticsearch_url, replicas=0)  # the CLI's own prefix
    try:
        assert result.exit_code == 0, result.output
        recorded = store.stats().analyzers
        fallback = sorted(k for k, v in recorded.items() if v == "standard")
        assert recorded and "text analysis" in result.output
        assert f"standard (no stemming) for {', '.join(fallback)}"[:60] in " ".join(result.output.split())
    finally:
        store.drop_all()
        store.close()


def _flatten(properties: dict, prefix: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        if "properties" in spec:
            fields.update(_flatten(spec["properties"], f"{prefix}{name}."))
        fields[f"{prefix}{name}"] = spec.get("type", "object")
    return fields


def test_kibana_objects_name_live_fields_and_undated_articles_stay_in_time(elasticsearch_url: str,
                                                                         prefix: str) -> None:
    import json

    from energywatch.kibana import saved_objects

    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        undated = EN.model_copy(update={"published_at": None})
        store.put_documents([undated, RU])
        mapping = store.client.indices.get_mapping(index=store.alias)
        fields = _flatten(next(iter(mapping.values()))["mappings"]["properties"])
        wanted: dict[str, set[str]] = {}
        for obj in saved_objects():
            attributes = obj["attributes"]
            if "timeFieldName" in attributes:
                wanted.setdefault(attributes["timeFieldName"], set()).add("date")
            for column in attributes.get("columns", []):
                wanted.setdefault(column, set())
            for field, _ in attributes.get("sort", []):
                wanted.setdefault(field, set()).add("date")
            for agg in json.loads(attributes.get("visState", '{"aggs": []}'))["aggs"]:
                field = agg["params"].get("field")
                if field:
                    kind = {"date_histogram": "date", "terms": "keyword", "cardinality": "keyword"}[agg["type"]]
                    wanted.setdefault(field, set()).add(kind)
        for field, kinds in wanted.items():
            assert field in fields, f"Kibana names {field}, which the live index does not have"
            assert not kinds or fields[field] in kinds, f"{field} is {fields[field]}, Kibana needs {kinds}"
        # the data view's time filter keeps an article without a publication date
        store.prepare_lookups()
        hits = store.client.search(index=store.alias, query={"range": {"dated_at": {"gte": "now-100y"}}})
        assert {h["_id"] for h in hits["hits"]["hits"]} == {undated.id, RU.id}
    finally:
        store.close()


def _as(url: str, user: str, password: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{user}:{password}@{parts.hostname}:{parts.port}"


def test_setup_apart_from_use_with_least_privilege(elasticsearch_url: str, prefix: str) -> None:
    """An administrator sets up; ingest works as a writer, the web UI as a reader; neither may set up."""
    from datetime import timedelta

    import es_node
    from energywatch.models import Alert, FeedState
    from store.test_contract import T0

    if es_node.USER not in elasticsearch_url:
        pytest.skip("the least-privilege users exist on the test node only (ELASTICSEARCH_URL points elsewhere)")
    admin = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)  # the set-up
    try:
        writer = ElasticsearchStore.from_url(_as(elasticsearch_url, es_node.WRITER, es_node.LOW_PASSWORD),
                                             prefix=prefix, replicas=0)
        alert = Alert(id="lp1", rule="r", channel="hook", story_id=RU.id, doc_id=RU.id, title="t",
                      url="https://x.example/", source="S", created_at=T0, due_at=T0)
        assert writer.put_documents([RU], [alert]) == [RU.id]
        writer.save_feed_states([FeedState(feed_id="f1", url="https://x.example/feed")])
        now = T0 + timedelta(minutes=1)
        assert [a.id for a in writer.claim_alerts(writer.due_alerts(now), now, timedelta(minutes=5))] == ["lp1"]
        assert writer.search(SearchQuery(text="Баку")).total == 1
        writer.close()
        reader = ElasticsearchStore.from_url(_as(elasticsearch_url, es_node.READER, es_node.LOW_PASSWORD),
                                             prefix=prefix, replicas=0)
        try:
            assert reader.search(SearchQuery(text="Баку")).total == 1 and reader.stats().documents == 1
            # a reader may not refresh: it sees other users' writes within the refresh interval (1 s)
            deadline = time.monotonic() + 10
            while not reader.get_feed_states() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert list(reader.get_feed_states()) == ["f1"]
            with pytest.raises(StoreError, match="may not do this .*HTTP 403"):
                reader.save_feed_states([FeedState(feed_id="f2", url="https://x.example/2")])
        finally:
            reader.close()
        # a store nobody has set up: the writer may not create it, and is told who may
        with pytest.raises(StoreError, match="run `energywatch es setup` once as an administrator"):
            ElasticsearchStore.from_url(_as(elasticsearch_url, es_node.WRITER, es_node.LOW_PASSWORD),
                                        prefix=f"{prefix}-new", replicas=0)
    finally:
        admin.drop_all()
        admin.close()


def test_wrong_password_is_a_clear_error(elasticsearch_url: str) -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    wrong = _as(elasticsearch_url, "energywatch", "not-the-password")
    result = CliRunner().invoke(app, ["stats", "--store", wrong])
    assert result.exit_code == 2, result.output
    assert "refused the credentials" in result.output and "Traceback" not in result.output
    assert "not-the-password" not in result.output


def test_es_setup_command(elasticsearch_url: str) -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    url = f"{elasticsearch_url}/?shards=2&replicas=0"  # a single node: no replica, else yellow for ever
    result = CliRunner().invoke(app, ["es", "setup", "--store", url], env={"COLUMNS": "200"})
    try:
        assert result.exit_code == 0, result.output
        assert "ready:" in result.output and "energywatch-documents → energywatch-documents-v1" in result.output
        assert "language analyzers:" in result.output and "layout: shards 2, replicas 0" in result.output
        client = client_from_url(elasticsearch_url)
        index = client.indices.get_settings(index="energywatch-documents-v1")["energywatch-documents-v1"]["settings"]
        assert (index["index"]["number_of_shards"], index["index"]["number_of_replicas"]) == ("2", "0")
        assert client.cluster.health(index="energywatch-*", timeout="30s", wait_for_status="green")["status"] == "green"
        # run again on the live indices: replicas change in place, the shard count waits for a reindex
        again = CliRunner().invoke(app, ["es", "setup", "--store", f"{elasticsearch_url}/?shards=1&replicas=1"],
                                   env={"COLUMNS": "200"})
        assert again.exit_code == 0, again.output
        assert "keeps its 2 shard(s): the next index version gets 1" in again.output
        replicas = client.indices.get_settings(index="energywatch-*", name="index.number_of_replicas")
        assert {v["settings"]["index"]["number_of_replicas"] for v in replicas.values()} == {"1"}
        client.close()
    finally:
        store = ElasticsearchStore.from_url(elasticsearch_url, replicas=0)
        store.drop_all()
        store.close()


def test_reindex_to_a_new_version_swaps_the_alias(elasticsearch_url: str, prefix: str) -> None:
    from store.test_contract import AR

    store = ElasticsearchStore.from_url(elasticsearch_url, prefix=prefix, replicas=0)
    try:
        store.put_documents([RU, AR, EN])
        old, new, copied = store.reindex(2)
        assert (old, new, copied) == (f"{prefix}-documents-v1", f"{prefix}-documents-v2", 3)
        aliases = store.client.indices.get_alias(name=store.alias)
        assert list(aliases) == [new] and aliases[new]["aliases"][store.alias]["is_write_index"]
        assert store.search(SearchQuery(text="Баку")).hits[0].document.id == RU.id
        later = doc(90, title="after", text="written after the swap", lang="en")
        store.put_documents([later])
        store.client.indices.refresh(index=f"{old},{new}")
        assert store.client.count(index=new)["count"] == 4 and store.client.count(index=old)["count"] == 3
        with pytest.raises(StoreError, match="exists already"):
            store.reindex(2)
    finally:
        store.close()


def test_es_reindex_command(elasticsearch_url: str) -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    store = ElasticsearchStore.from_url(elasticsearch_url, replicas=0)  # the CLI's own prefix
    try:
        store.put_documents([RU])
        result = CliRunner().invoke(app, ["es", "reindex", "--to-version", "3", "--store", elasticsearch_url],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "1 document(s) from energywatch-documents-v1 to energywatch-documents-v3" in result.output
        again = CliRunner().invoke(app, ["es", "reindex", "--to-version", "3", "--store", elasticsearch_url])
        assert again.exit_code == 2 and "exists already" in again.output and "Traceback" not in again.output
    finally:
        store.drop_all()
        store.close()
