"""The JSON API and the pages through FastAPI's test client, over a store filled by the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import SHARED
from energywatch.config import Settings
from energywatch.web.app import create_app, safe_href
from test_web.conftest import HOSTILE_TITLE

needs_seeds = pytest.mark.skipif(not (SHARED / "seeds").exists(), reason="../shared/seeds is absent")


@needs_seeds
def test_api_search_finds_inflected_russian(client: TestClient) -> None:
    analyzers = client.get("/api/stats").json().get("analyzers") or {}
    # an Elasticsearch without a Russian analyzer matches the word as the page writes it
    query = "энергетической безопасности" if analyzers.get("ru") == "standard" else "энергетическая безопасность"
    response = client.get("/api/search", params={"q": query})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert hits and hits[0]["document"]["language"] == "ru" and hits[0]["highlights"]
    arabic = client.get("/api/search", params={"lang": "ar"}).json()
    assert arabic["total"] == 1 and arabic["facets"]["language"][0]["value"] == "ar"


def test_api_document_feeds_stats_alerts(client: TestClient) -> None:
    hits = client.get("/api/search", params={"label": "core", "all_copies": "true"}).json()["hits"]
    assert hits
    doc_id = hits[0]["document"]["id"]
    assert client.get(f"/api/documents/{doc_id}").json()["id"] == doc_id
    assert client.get("/api/documents/nope").status_code == 404
    feeds = client.get("/api/feeds").json()
    assert feeds[0]["feed_id"] == "web"
    assert client.get("/api/stats").json()["documents"] >= 1
    assert client.get("/api/alerts").json() == []
    assert client.get("/api/search", params={"since": "last week"}).status_code == 422
    assert client.get("/api/search", params={"label": "urgent"}).status_code == 422
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/documents/{doc_id}", "/api/feeds", "/api/stats"} <= set(schema["paths"])


def test_pages_escape_everything_and_send_csp(client: TestClient) -> None:
    page = client.get("/", params={"q": "pipeline"})
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert HOSTILE_TITLE not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<svg class=\"timeline\"" in page.text
    assert "Local &lt;b&gt;News&lt;/b&gt;" in page.text  # even the feed's own name is escaped
    for path in ("/feeds", "/alerts"):
        assert client.get(path).status_code == 200


def test_javascript_urls_never_become_links(client: TestClient) -> None:
    assert safe_href("javascript:alert(1)") is None and safe_href("data:text/html,x") is None
    assert safe_href("https://example.org/a") == "https://example.org/a"
    docs = client.get("/api/search", params={"all_copies": "true", "limit": 100}).json()["hits"]
    for hit in docs:
        html = client.get(f"/doc/{hit['document']['id']}").text
        assert 'href="javascript:' not in html


def test_token_is_required_when_configured(filled_store: Path) -> None:
    from pydantic import SecretStr

    app = create_app(Settings(store=f"sqlite:///{filled_store}", web_token=SecretStr("t0ken")))
    with TestClient(app) as guarded:
        assert guarded.get("/api/stats").status_code == 401
        assert guarded.get("/api/stats", headers={"Authorization": "Bearer t0ken"}).status_code == 200
        assert guarded.get("/", params={"token": "t0ken"}).status_code == 200
        assert guarded.get("/api/stats").status_code == 200  # the cookie set by ?token= carries on


def test_serve_refuses_public_bind_without_token() -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env={"ENERGYWATCH_WEB_TOKEN": ""})
    assert result.exit_code == 2 and "ENERGYWATCH_WEB_TOKEN" in result.output
