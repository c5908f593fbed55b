"""A store filled by the real pipeline from a local feed (the seed articles and a hostile page)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest

from conftest import SHARED, article_html, rss
from energywatch.config import Settings
from energywatch.models import Feed
from energywatch.pipeline import run
from energywatch.store import open_store

HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
PARAS = ["Drones attacked the gas pipeline compressor station overnight; NATO condemned the sabotage of energy "
         "infrastructure and the operator said supplies were interrupted."] * 3


def seed_page(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    title = max(lines[:4], key=len)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title></head><body><article>'
            f"<h1>{escape(title)}</h1>" + "".join(f"<p>{escape(l)}</p>" for l in lines) + "</article></body></html>")


def _fill(server, store_url: str, folder: Path) -> None:
    """Run the real pipeline over the seeds (when ../shared is there), a hostile page and a bad link."""
    items = []
    seeds = SHARED / "seeds"
    for name in ("000_7cdd14b6ffe0cde8.txt", "003_e931569a865d8ebe.txt"):
        if (seeds / name).exists():
            server.expect_request(f"/web/{name}").respond_with_data(seed_page(seeds / name),
                                                                     content_type="text/html; charset=utf-8")
            items.append({"title": name, "link": server.url_for(f"/web/{name}"), "guid": name})
    server.expect_request("/web/hostile").respond_with_data(
        article_html(HOSTILE_TITLE, PARAS).replace(f"<title>{escape(HOSTILE_TITLE)}</title>",
                                                   f"<title>{escape(HOSTILE_TITLE)}</title>"),
        content_type="text/html")
    items.append({"title": HOSTILE_TITLE, "link": server.url_for("/web/hostile"), "guid": "hostile"})
    items.append({"title": "javascript link", "link": "javascript:alert(2)", "guid": "js"})
    server.expect_request("/web.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    settings = Settings(store=store_url, allow_private_addresses=True, workers=1, alerts_file=folder / "none.yaml")
    store = open_store(store_url)
    try:
        run(settings, [Feed(id="web", name="Local <b>News</b>", url=server.url_for("/web.rss"))], store)
    finally:
        store.close()
    server.clear()


@pytest.fixture(scope="session")
def filled_store(make_httpserver, tmp_path_factory) -> Iterator[Path]:
    """Path of a SQLite store filled by the pipeline (see _fill)."""
    folder = tmp_path_factory.mktemp("web")
    _fill(make_httpserver, f"sqlite:///{folder / 'web.db'}", folder)
    yield folder / "web.db"


@pytest.fixture(scope="session")
def filled_es_url(make_httpserver, tmp_path_factory, elasticsearch_url: str) -> Iterator[str]:
    """The same, on the live Elasticsearch node: the store URL with its own index prefix."""
    url = f"{elasticsearch_url}/?index_prefix=ew-web-{uuid.uuid4().hex[:8]}"
    _fill(make_httpserver, url, tmp_path_factory.mktemp("web-es"))
    store = open_store(url)
    store.prepare_lookups()  # what the pipeline wrote is searchable for the web app's own store object
    store.close()
    yield url
    store = open_store(url)
    store.drop_all()
    store.close()


@pytest.fixture(params=["sqlite", "elasticsearch"])
def client(request: pytest.FixtureRequest):
    """FastAPI's test client over the filled store, embedded and on Elasticsearch."""
    from fastapi.testclient import TestClient

    from energywatch.web.app import create_app

    if request.param == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('filled_store')}"
    else:
        url = request.getfixturevalue("filled_es_url")
    app = create_app(Settings(store=url))
    with TestClient(app, base_url="http://localhost") as test_client:
        yield test_client
