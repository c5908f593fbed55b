"""A three-node cluster on loopback (one replica): a node stopped in the middle of an ingest loses nothing.

The store URL names all three nodes; the client spreads requests over them and retries on another
node when one goes away, and Elasticsearch promotes the replicas of the lost node's shards. The
node stopped is the elected master holding primaries: the hardest of the three to lose.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from conftest import article_html, rss
from energywatch.config import Settings
from energywatch.errors import StoreUnavailable
from energywatch.models import Feed, RunSummary
from energywatch.pipeline import run
from energywatch.store.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.slow

PAGES = 60


def _slow(body: str, delay: float):
    from werkzeug import Response

    def handler(request):
        time.sleep(delay)
        return Response(body, content_type="text/html; charset=utf-8")

    return handler


def test_one_node_stopped_during_an_ingest(httpserver: HTTPServer, tmp_path: Path) -> None:
    import es_node

    try:
        nodes = es_node.start_cluster(3)
    except es_node.Unavailable as exc:
        pytest.skip(f"no Elasticsearch test distribution here: {exc}")
    try:
        _stop_one_node_during_ingest(nodes, httpserver, tmp_path)
    finally:
        problems = [p for node in nodes for p in node.stop()]
        assert not problems


def _stop_one_node_during_ingest(nodes: list, httpserver: HTTPServer, tmp_path: Path) -> None:
    url = f"http://{es_node_credentials()}@" + ",".join(f"127.0.0.1:{n.http_port}" for n in nodes)
    store = ElasticsearchStore.from_url(url, prefix="ew-cluster", shards=3, replicas=1)
    client = store.client
    assert client.cluster.health(wait_for_status="green", timeout="120s")["number_of_nodes"] == 3
    items = []
    for i in range(PAGES):
        path = f"/cluster/{i}"
        body = article_html(f"Pipeline story {i}", [f"Story number {i} on the gas pipeline network.",
                                                    "Operators reported pressure drops at two compressor stations "
                                                    "after the incident, and the grid operator raised its alert level."])
        httpserver.expect_request(path).respond_with_handler(_slow(body, 0.5))
        items.append({"title": f"Pipeline story {i}", "link": httpserver.url_for(path), "guid": f"cluster-{i}",
                      "description": f"Summary {i}", "pubDate": "Fri, 20 Nov 2026 10:00:00 GMT"})
    httpserver.expect_request("/cluster.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = [Feed(id="cluster", name="Cluster", url=httpserver.url_for("/cluster.rss"), language="en")]
    settings = Settings(store=url, allow_private_addresses=True, workers=1, per_host_concurrency=4,
                        alerts_file=tmp_path / "none.yaml")

    outcome: dict[str, RunSummary | BaseException] = {}

    def ingest() -> None:
        try:
            outcome["summary"] = run(settings, feeds, store)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            outcome["error"] = exc

    worker = threading.Thread(target=ingest)
    worker.start()
    deadline = time.monotonic() + 120
    while _stored(client) < 8 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    before = _stored(client)
    assert 0 < before < PAGES, f"the ingest was not under way when the node was to be stopped ({before} stored)"
    master = client.cat.master(format="json")[0]["node"]
    victim = next(n for n in nodes if _name(n) == master)
    primaries = [s for s in client.cat.shards(index="ew-cluster-*", format="json")
                 if s["node"] == master and s["prirep"] == "p"]
    assert not victim.stop(keep_data=True)
    worker.join(timeout=300)
    assert not worker.is_alive()
    first = outcome.get("summary") or outcome.get("error")
    told = (f"{first.documents_stored} stored, {len(first.failures)} failures, store {first.stage_seconds['store']:.1f} s"
            if isinstance(first, RunSummary) else repr(first))
    print(f"stopped {master} (master, {len(primaries)} primary shards) with {before}/{PAGES} stored; first run: {told}")
    if isinstance(first, BaseException):
        assert isinstance(first, StoreUnavailable), first  # a clear, retryable error, nothing else
    again = run(settings, feeds, store)  # finishes whatever the first run could not
    assert not again.failures
    total = (first.documents_stored if isinstance(first, RunSummary) else 0) + again.documents_stored
    store.prepare_lookups()
    assert _stored(client) == PAGES
    urls = client.search(index=store.alias, size=0, aggs={"u": {"terms": {"field": "url", "size": PAGES + 10,
                                                                          "min_doc_count": 2}}})
    assert not urls["aggregations"]["u"]["buckets"], "a page stored twice"
    client.indices.refresh(index=store.seen_index)
    assert client.count(index=store.seen_index)["count"] == PAGES
    assert run(settings, feeds, store).documents_stored == 0  # and nothing more on a third run
    if isinstance(first, RunSummary):
        assert total == PAGES
    # every shard has a primary on the two nodes left (their new replicas wait out node_left.delayed_timeout)
    health = client.cluster.health(wait_for_status="yellow", timeout="60s")
    assert health["number_of_nodes"] == 2 and health["status"] in {"yellow", "green"}
    store.close()


def es_node_credentials() -> str:
    import es_node

    return f"{es_node.USER}:{es_node.PASSWORD}"


def _name(node) -> str:
    return next(line.split(":", 1)[1].strip() for line in (node.home / "config" / "elasticsearch.yml").read_text()
                .splitlines() if line.startswith("node.name:"))


def _stored(client) -> int:
    client.indices.refresh(index="ew-cluster-documents")
    return client.count(index="ew-cluster-documents")["count"]
