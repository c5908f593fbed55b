"""A store filled by the real pipeline from a local feed (the seed articles and a hostile page)."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest

from conftest import SHARED, article_html, rss
from energywatch.config import Settings
from energywatch.models import Feed
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore

HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
PARAS = ["Drones attacked the gas pipeline compressor station overnight; NATO condemned the sabotage of energy "
         "infrastructure and the operator said supplies were interrupted."] * 3


def seed_page(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    title = max(lines[:4], key=len)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title></head><body><article>'
            f"<h1>{escape(title)}</h1>" + "".join(f"<p>{escape(l)}</p>" for l in lines) + "</article></body></html>")


@pytest.fixture(scope="session")
def filled_store(make_httpserver, tmp_path_factory) -> Iterator[Path]:
    """Path of a SQLite store holding the two seeds (when ../shared is there) and a hostile page."""
    server = make_httpserver
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
    folder = tmp_path_factory.mktemp("web")
    settings = Settings(store=f"sqlite:///{folder / 'web.db'}", allow_private_addresses=True, workers=1,
                        alerts_file=folder / "none.yaml")
    store = SQLiteStore(folder / "web.db")
    try:
        run(settings, [Feed(id="web", name="Local <b>News</b>", url=server.url_for("/web.rss"))], store)
    finally:
        store.close()
    server.clear()
    yield folder / "web.db"


@pytest.fixture
def client(filled_store: Path):
    """FastAPI's test client over the filled store."""
    from fastapi.testclient import TestClient

    from energywatch.web.app import create_app

    app = create_app(Settings(store=f"sqlite:///{filled_store}"))
    with TestClient(app) as test_client:
        yield test_client
