"""The JSON API and the pages through FastAPI's test client, over a store filled by the pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import SHARED
from energywatch.config import Settings
from energywatch.errors import ConfigError
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


TOKEN = "an-access-token-of-24-chars"


def test_token_is_required_when_configured(filled_store: Path) -> None:
    from pydantic import SecretStr

    app = create_app(Settings(store=f"sqlite:///{filled_store}", web_token=SecretStr(TOKEN)))
    with TestClient(app, base_url="http://localhost") as guarded:
        refused = guarded.get("/api/stats")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="energywatch"'
        assert refused.headers["Content-Security-Policy"] and refused.headers["Cache-Control"] == "no-store"
        assert guarded.get("/api/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert guarded.get("/api/stats", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
        assert guarded.get("/api/stats", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
        # ?token= is swapped for a cookie at once, and leaves the address bar
        first = guarded.get("/", params={"token": TOKEN, "q": "gas"}, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/?q=gas"
        cookie = guarded.cookies.get("energywatch_session")
        assert cookie and TOKEN not in cookie and "HttpOnly" in first.headers["set-cookie"]
        page = guarded.get("/?q=gas")
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        assert guarded.get("/api/stats").status_code == 200  # the cookie carries on
    with TestClient(app, base_url="http://localhost") as guesser:
        codes = [guesser.get("/api/stats", headers={"Authorization": f"Bearer wrong-{n}"}).status_code
                 for n in range(12)]
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        assert int(guesser.get("/api/stats").headers["Retry-After"]) > 0
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(Settings(store=f"sqlite:///{filled_store}", web_token=SecretStr("t0ken")))


def test_only_the_configured_host_names_are_answered(filled_store: Path) -> None:
    app = create_app(Settings(store=f"sqlite:///{filled_store}"), allowed_hosts=["news.internal"])
    with TestClient(app, base_url="http://localhost") as client:
        assert client.get("/api/stats").status_code == 200
        assert client.get("/api/stats", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/api/stats", headers={"Host": "[::1]:8000"}).status_code == 200
        assert client.get("/api/stats", headers={"Host": "news.internal"}).status_code == 200
        rebound = client.get("/api/stats", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400 and "attacker.example" in rebound.json()["detail"]


def test_pages_answer_errors_with_a_page_that_keeps_the_form(client: TestClient) -> None:
    bad = client.get("/", params={"q": "gas", "since": "yesterday"}, headers={"Accept": "text/html"})
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    assert 'value="gas"' in bad.text and "cannot read time" in bad.text
    missing = client.get("/doc/0123456789abcdef", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"] and "Not found" in missing.text
    far = client.get("/api/search", params={"since": "1000000d"})
    assert far.status_code == 422 and "year 1" in far.json()["detail"]
    long_query = client.get("/", params={"q": "x" * 600}, headers={"Accept": "text/html"})
    assert long_query.status_code == 422 and "<form" in long_query.text


def test_until_a_date_keeps_that_day(client: TestClient) -> None:
    every = client.get("/api/search", params={"all_copies": "true", "limit": 100}).json()["hits"]
    days = sorted({h["document"]["published_at"][:10] for h in every if h["document"]["published_at"]})
    kept = client.get("/api/search", params={"all_copies": "true", "limit": 100, "until": days[0]}).json()["hits"]
    assert kept and all(h["document"]["published_at"][:10] == days[0] for h in kept)


def test_feed_urls_never_show_their_credentials(tmp_path: Path) -> None:
    from energywatch.models import FeedState
    from energywatch.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "f.db")
    url = "https://reader:s3cret@feeds.example/private.rss?apikey=K3Y&lang=en"
    store.save_feed_states([FeedState(feed_id="private", url=url, last_error=f"{url}: timed out")])
    store.close()
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'f.db'}"))
    with TestClient(app, base_url="http://localhost") as client:
        for text in (client.get("/api/feeds").text, client.get("/feeds").text):
            assert "s3cret" not in text and "K3Y" not in text and "reader:***@feeds.example" in text


def test_serve_refuses_public_bind_without_token() -> None:
    from typer.testing import CliRunner

    from energywatch.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env={"ENERGYWATCH_WEB_TOKEN": ""})
    assert result.exit_code == 2 and "ENERGYWATCH_WEB_TOKEN" in result.output


def test_timeline_bins_by_day_week_or_month_and_stays_in_its_box() -> None:
    import re
    from datetime import date, timedelta

    from energywatch.models import TimelinePoint
    from energywatch.web.app import timeline_svg

    def bars(svg: str) -> list[tuple[float, float]]:
        return [(float(x), float(w)) for x, w in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)]

    start = date(2024, 1, 1)
    year_and_a_half = [TimelinePoint(day=(start + timedelta(days=d)).isoformat(), label="core", stories=1)
                       for d in range(0, 560, 3)]
    svg = str(timeline_svg(year_and_a_half))
    assert "stories per month" in svg and len(bars(svg)) == 19  # Jan 2024 … Jul 2025
    assert all(30 <= x and x + w <= 720 for x, w in bars(svg))  # every bar inside the viewBox
    assert "Jan 2024" in svg and "Jul 2025" in svg
    weeks = str(timeline_svg(year_and_a_half[:30]))
    assert "stories per week" in weeks and all(x + w <= 720 for x, w in bars(weeks))
    one_day = str(timeline_svg([TimelinePoint(day="2026-11-30", label="core", stories=4)]))
    assert "stories per day" in one_day and bars(one_day)[0][1] <= 24


def test_active_filters_show_as_removable_chips_and_pages_count(client: TestClient) -> None:
    page = client.get("/", params={"label": "core", "org": "NATO", "lang": "zh", "since": "3650d"}).text
    for chip in ("label: <bdi>core</bdi>", "organisation: <bdi>NATO</bdi>", "language: <bdi>zh</bdi>",
                 "since: <bdi>3650d</bdi>"):
        assert chip in page, chip
    assert 'href="/?label=core&amp;org=NATO&amp;since=3650d&amp;sort=relevance"' in page  # drops zh only
    assert "clear all" in page
    listing = client.get("/", params={"limit": 2, "all_copies": "true"}).text
    assert "1–2 of" in listing and "next page" in listing
    # no words: the page says what it does, sorting by date
    assert '<option value="date" selected>' in listing


def test_export_a_search_as_csv_or_json_lines(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    import io
    import json

    from energywatch import export

    monkeypatch.setattr(export, "PAGE", 3)  # several pages even on the small test store
    every = client.get("/api/search", params={"all_copies": "true", "limit": 100}).json()["total"]
    csv_answer = client.get("/api/export", params={"all_copies": "true"})
    assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert len(rows) == every and list(rows[0]) == list(export.DEFAULT_FIELDS) and "text" not in rows[0]
    lines = client.get("/api/export", params={"format": "jsonl", "fields": ["title", "text"], "rows": 4,
                                              "all_copies": "true"}).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == min(4, every) and set(records[0]) == {"title", "text"} and records[0]["text"]
    bad = client.get("/api/export", params={"fields": ["password"]})
    assert bad.status_code == 422 and "unknown export field" in bad.json()["detail"]
    assert 'href="/api/export?' in client.get("/").text


def test_facets_name_languages_and_countries_and_dates_have_presets(client: TestClient) -> None:
    page = client.get("/").text
    assert "ar · Arabic" in page or "ru · Russian" in page
    assert 'href="/?since=7d&amp;sort=relevance"' in page and "30 days" in page


def test_story_page_lists_every_copy_oldest_first(client: TestClient) -> None:
    hits = client.get("/api/search", params={"limit": 100}).json()["hits"]
    # the store of these tests has stories of one copy; the contract tests cover grouping
    story = max(hits, key=lambda h: h["copies"])["document"]["story_id"]
    page = client.get(f"/story/{story}")
    assert page.status_code == 200 and "first published by" in page.text
    copies = client.get("/api/search", params={"story": story, "limit": 100}).json()["hits"]
    assert page.text.count('<li lang=') == len(copies) >= 1
    dates = sorted(h["document"]["published_at"] for h in copies if h["document"]["published_at"])
    first = next(h["document"] for h in copies if h["document"]["published_at"] == dates[0])
    assert page.text.index(f'/doc/{first["id"]}') <= min(page.text.index(f'/doc/{h["document"]["id"]}') for h in copies)
    missing = client.get("/story/no-such-story", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "Not found" in missing.text


def test_story_page_puts_the_first_publisher_first(tmp_path: Path) -> None:
    from energywatch.store.sqlite import SQLiteStore
    from store.test_contract import ALL, EN, EN_COPY

    store = SQLiteStore(tmp_path / "s.db")
    store.put_documents(ALL)
    store.close()
    with TestClient(create_app(Settings(store=f"sqlite:///{tmp_path / 's.db'}")), base_url="http://localhost") as c:
        page = c.get(f"/story/{EN.id}").text
    assert "2 copies in 2 source(s) and 1 language(s)" in page and "first published by <b dir=\"auto\">Source f1" in page
    assert page.index(f"/doc/{EN.id}") < page.index(f"/doc/{EN_COPY.id}")
