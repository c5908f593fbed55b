"""Faults on the real engine, each on a node of its own: the node going away, and a full write queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from conftest import rss
from energywatch.config import Settings
from energywatch.errors import StoreUnavailable
from energywatch.models import Feed
from energywatch.pipeline import run
from energywatch.store.elasticsearch import ElasticsearchStore
from store.test_contract import doc
from test_pipeline import serve_articles

pytestmark = pytest.mark.slow


def _node(**settings: str):
    import es_node

    try:
        return es_node.start_node(extra_settings=settings)
    except es_node.Unavailable as exc:
        pytest.skip(f"no Elasticsearch test distribution here: {exc}")


@pytest.fixture
def node() -> Iterator[object]:
    started = _node()
    yield started
    assert not started.stop()


def test_node_down_then_back_loses_nothing(node, httpserver: HTTPServer, tmp_path: Path) -> None:
    items = serve_articles(httpserver, 3, prefix="down")
    httpserver.expect_request("/down.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = [Feed(id="down", name="Down", url=httpserver.url_for("/down.rss"), language="en")]
    settings = Settings(store=node.url, allow_private_addresses=True, workers=1, read_timeout=5.0,
                        connect_timeout=2.0, alerts_file=tmp_path / "none.yaml")
    store = ElasticsearchStore.from_url(node.url, replicas=0)
    store.client = store.client.options(request_timeout=5, max_retries=1)
    assert not node.stop(keep_data=True)  # every node of the cluster gone
    with pytest.raises(StoreUnavailable, match="retry later"):
        run(settings, feeds, store)
    node.restart()
    summary = run(settings, feeds, store)  # nothing was marked seen: the next run stores everything
    assert summary.documents_stored == 3 and not summary.failures
    store.prepare_lookups()
    assert store.stats().documents == 3
    again = run(settings, feeds, store)
    assert again.documents_stored == 0  # and nothing twice
    store.close()


def test_a_full_write_queue_is_waited_out() -> None:
    # one write thread and a queue of one: concurrent bulk requests get 429s, which are retried
    node = _node(**{"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"})
    try:
        store = ElasticsearchStore.from_url(node.url, replicas=0)
        batches = [[doc(10_000 + b * 300 + i, title=f"t{b}-{i}", text="gas " * 200, lang="en")
                    for i in range(300)] for b in range(4)]
        stored: list[list[str]] = []

        def write(batch: list) -> None:
            stored.append(store.put_documents(batch))

        threads = [threading.Thread(target=write, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert sum(len(s) for s in stored) == 1200
        rejected = store.client.nodes.stats(metric="thread_pool")["nodes"]
        rejections = sum(n["thread_pool"]["write"]["rejected"] for n in rejected.values())
        store.prepare_lookups()
        assert store.stats().documents == 1200
        print(f"write queue rejections retried: {rejections}")
        store.close()
    finally:
        assert not node.stop()
