"""Shared fixtures: settings for tests, a fresh SQLite store, the shared corpus, a feed builder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from energywatch.config import Settings
from energywatch.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ENERGYWATCH_SHARED", REPO.parent / "shared"))
# measured quality scores pinned as floors (extraction, relevance, language); see the file's _comment
BASELINE = json.loads((REPO / "tests" / "quality_baseline.json").read_text(encoding="utf-8"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests need ../shared beside the repository (or ENERGYWATCH_SHARED)")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for tests: loopback allowed (the local servers), short timeouts, a store in tmp_path."""
    return Settings(
        store=f"sqlite:///{tmp_path / 'test.db'}", allow_private_addresses=True, read_timeout=2.0,
        connect_timeout=2.0, max_inline_retry_after=2.0, workers=2, feeds_file=tmp_path / "feeds.yaml",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A fresh embedded store."""
    s = SQLiteStore(tmp_path / "test.db")
    yield s
    s.close()


def rss(items: list[dict[str, str]], *, title: str = "Test feed", encoding: str = "utf-8") -> bytes:
    """An RSS 2.0 document with the given items (title, link, guid, description, pubDate)."""
    parts = [f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>']
    for item in items:
        parts.append("<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items()) + "</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode(encoding)


def article_html(title: str, paragraphs: list[str], *, lang: str = "en", date: str = "2026-11-20") -> str:
    """A realistic article page: navigation, the article, a footer."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta property="article:published_time" content="{date}T08:00:00Z"></head><body>'
        '<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/energy">Energy</a></nav>'
        f"<main><article><h1>{escape(title)}</h1>{body}</article></main>"
        "<footer>© Example News. All rights reserved. Contact us. Privacy policy.</footer></body></html>"
    )


@pytest.fixture(scope="session")
def make_httpserver() -> Iterator[object]:
    """pytest-httpserver's server, threaded: slow handlers must not stall the next request."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(scope="session")
def elasticsearch_url() -> Iterator[str]:
    """A live Elasticsearch: ELASTICSEARCH_URL when set, else a node of Elastic's test distribution.

    The node is started once per test session (Maven fetches the distribution; a Java 21+ runtime runs
    it) and stopped at the end; where neither is available the tests that need it skip and say why.
    """
    url = os.environ.get("ELASTICSEARCH_URL")
    if url:
        yield url
        return
    import es_node

    try:
        node = es_node.start_node()
    except es_node.Unavailable as exc:
        pytest.skip(f"no Elasticsearch: ELASTICSEARCH_URL is not set and {exc}")
    try:
        yield node.url
    finally:
        problems = node.stop()
    assert not problems, problems
