"""Storage backends behind one protocol; `open_store(url)` picks one from a URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from energywatch.errors import ConfigError
from energywatch.store.base import Store
from energywatch.urls import redact_url as redact


def open_store(url: str) -> Store:
    """Open the store a URL names: sqlite:///path (embedded default) or http(s)://… (Elasticsearch).

    An Elasticsearch URL may name the indices' prefix, for several deployments on one cluster:
    http://host:9200/?index_prefix=energywatch-staging (default "energywatch"), the template's layout
    (?shards=1&replicas=0 for a single node; default 1 shard, 1 replica), and a cluster's nodes
    comma-separated: http://user:pass@es1:9200,es2:9200,es3:9200.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from energywatch.store.sqlite import SQLiteStore, sqlite_path

        return SQLiteStore(sqlite_path(url))
    if scheme in {"http", "https"}:
        from energywatch.store.elasticsearch import ElasticsearchStore, index_layout, index_prefix

        return ElasticsearchStore.from_url(url, prefix=index_prefix(url), **index_layout(url))
    raise ConfigError(f"unknown store URL {url!r}: use sqlite:///path/to/file.db or http(s)://host:9200")


__all__ = ["Store", "open_store", "redact"]
