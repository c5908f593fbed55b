"""The analyst's workbench: saved searches that alert, entity pages, "new since my last visit", lead
images, the feeds and alerts pages — through the test client, over real stores and a real pipeline."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from conftest import article_html, rss
from energywatch.alerts.outbox import deliver
from energywatch.alerts.rules import load_rules
from energywatch.cli import app as cli
from energywatch.config import Settings
from energywatch.models import Alert, Document, Entities, Feed, Relevance, utcnow
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore
from energywatch.web.app import VISIT_COOKIE, create_app

SAME_ORIGIN = {"Origin": "http://localhost"}
ATTACK = ["Drones attacked the Druzhba oil pipeline pumping station overnight; NATO condemned the sabotage of "
          "energy infrastructure and the operator said supplies to Hungary were interrupted."] * 3


def rules_file(tmp_path: Path, hook: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(f'channels:\n  hook: {{type: webhook, url: "{hook}"}}\nrules: []\n', encoding="utf-8")
    return path


def test_a_search_saved_in_the_ui_alerts_on_new_stories_from_the_pipeline(tmp_path: Path,
                                                                            httpserver: HTTPServer) -> None:
    received: list[dict] = []

    def hook(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    settings = Settings(store=f"sqlite:///{tmp_path / 'w.db'}", alerts_file=rules_file(tmp_path, httpserver.url_for("/hook")),
                        allow_private_addresses=True, workers=1)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        search = {"q": "(Druzhba OR Дружба) pipeline*", "label": ["core", "related"]}
        form = {"name": "druzhba-watch", "channel": "hook"}
        # the search page's form carries the search in its action's query string
        page = client.get("/", params=search).text
        assert '<form class="save" method="post" action="/saved?q=%28Druzhba+OR+' in page
        # another site's page posting the form through the analyst's browser changes nothing
        forged = client.post("/saved", params=search, data=form, headers={"Origin": "http://evil.example"},
                             follow_redirects=False)
        assert forged.status_code == 403 and client.get("/api/saved").json() == []
        for headers in ({"Sec-Fetch-Site": "cross-site", **SAME_ORIGIN}, {"Origin": "null"}):
            assert client.post("/saved", params=search, data=form, headers=headers).status_code == 403
        assert client.get("/api/saved").json() == []
        made = client.post("/saved", params=search, data=form, headers=SAME_ORIGIN, follow_redirects=False)
        assert made.status_code == 303 and made.headers["location"] == "/saved?kept=druzhba-watch"
        listed = client.get("/saved")
        assert "druzhba-watch" in listed.text and "rule saved.druzhba-watch" in listed.text and "UTC" in listed.text
        # an unreadable query or an unknown channel is refused with what to fix, and nothing is kept
        bad = client.post("/saved", params={"q": "(gas"}, data={**form, "name": "bad"},
                          headers={**SAME_ORIGIN, "Accept": "text/html"})
        assert bad.status_code == 422 and "never closed" in bad.text
        unknown = client.put("/api/saved/x", params={"q": "gas", "channel": "pager"})
        assert unknown.status_code == 422 and "defines hook" in unknown.json()["detail"]
        kept = client.get("/api/saved").json()
        assert [(s["name"], s["text"], s["labels"], s["channels"]) for s in kept] == [
            ("druzhba-watch", search["q"], ["core", "related"], ["hook"])]

    check = CliRunner().invoke(cli, ["alerts", "check", "--rules", str(settings.alerts_file), "--store", settings.store])
    assert check.exit_code == 0, check.output
    assert "saved.druzhba-watch" in check.output and "1 more from saved searches" in check.output

    httpserver.expect_request("/a/1").respond_with_data(article_html("Drones hit the Druzhba pipeline", ATTACK),
                                                        content_type="text/html")
    httpserver.expect_request("/a/2").respond_with_data(
        article_html("Football: derby ends in a draw", ["The home side scored late in the second half."] * 4),
        content_type="text/html")
    items = [{"title": "Drones hit the Druzhba pipeline", "link": httpserver.url_for("/a/1"), "guid": "1"},
             {"title": "Derby", "link": httpserver.url_for("/a/2"), "guid": "2"}]
    httpserver.expect_request("/feed.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    store = SQLiteStore(tmp_path / "w.db")
    try:
        summary = run(settings, [Feed(id="local", name="Local", url=httpserver.url_for("/feed.rss"))], store)
        assert summary.documents_stored == 2 and summary.alerts_queued == 1
        report = deliver(store, load_rules(settings.alerts_file), utcnow())
        assert report.alerts_sent == 1
        assert [a.rule for a in store.alert_history()] == ["saved.druzhba-watch"]
    finally:
        store.close()
    assert len(received) == 1 and "Druzhba" in json.dumps(received[0], ensure_ascii=False)

    with TestClient(create_app(settings), base_url="http://localhost") as client:
        assert client.delete("/api/saved/druzhba-watch", headers=SAME_ORIGIN).status_code == 200
        assert client.delete("/api/saved/druzhba-watch").status_code == 404


def doc(n: int, *, indexed: datetime, image: str | None = None, orgs: tuple[str, ...] = ("NATO",)) -> Document:
    url = f"https://news.example/{n}"
    return Document(id=hashlib.sha1(url.encode()).hexdigest()[:16], url=url, canonical_url=url,
                    domain="news.example", feed_id="wire", source="Wire", title=f"Pipeline story {n}",
                    text="Drones attacked the pipeline. " * 10, language="en", image_url=image,
                    published_at=indexed - timedelta(hours=1), fetched_at=indexed, indexed_at=indexed,
                    relevance=Relevance(score=0.9, label="core", themes=("pipelines",)),
                    entities=Entities(organizations=orgs, infrastructure=("Druzhba/Friendship",), countries=("HU",)),
                    story_id=f"s{n}")


@pytest.fixture
def archive(tmp_path: Path) -> str:
    """A SQLite store with two old stories, one recent one, and 60 alerts of two rules."""
    now = utcnow()
    store = SQLiteStore(tmp_path / "a.db")
    alerts = [Alert(id=f"a{i:02d}", rule="nato" if i % 3 else "grid", channel="hook", story_id="s1", doc_id=doc(1, indexed=now).id,
                    title=f"alert {i}", url="https://news.example/1", source="Wire",
                    created_at=now - timedelta(minutes=i), due_at=now) for i in range(60)]
    store.put_documents([doc(1, indexed=now - timedelta(days=3), image="https://img.example/lead.jpg"),
                         doc(2, indexed=now - timedelta(days=2), orgs=("IAEA",)), doc(3, indexed=now)], alerts)
    store.close()
    return f"sqlite:///{tmp_path / 'a.db'}"


def test_entities_link_to_a_page_of_their_mentions(archive: str) -> None:
    with TestClient(create_app(Settings(store=archive)), base_url="http://localhost") as client:
        page = client.get(f"/doc/{doc(1, indexed=utcnow()).id}")
        assert 'href="/entity/org/NATO"' in page.text and 'href="/entity/infra/Druzhba%2FFriendship"' in page.text
        assert 'href="/entity/country/HU"' in page.text and "HU · Hungary" in page.text
        entity = client.get("/entity/org/NATO")
        assert entity.status_code == 200 and "Mentions over time" in entity.text and '<svg class="timeline"' in entity.text
        assert "Pipeline story 3" in entity.text and "Pipeline story 2" not in entity.text  # story 2 is IAEA's
        assert client.get("/entity/infra/Druzhba/Friendship").status_code == 200  # a "/" in a name
        missing = client.get("/entity/org/Nobody", headers={"Accept": "text/html"})
        assert missing.status_code == 404 and "no stored story mentions" in missing.text


def test_new_since_my_last_visit(archive: str) -> None:
    with TestClient(create_app(Settings(store=archive)), base_url="http://localhost") as client:
        first = client.get("/")
        assert "since your last visit" not in first.text and VISIT_COOKIE in first.cookies
        # back after a day away: the previous visit ended a day ago, and one story came since
        day_ago = (utcnow() - timedelta(days=1)).isoformat()
        client.cookies.set(VISIT_COOKIE, f"{day_ago}|{day_ago}")
        back = client.get("/")
        assert "1 new story</a> since your last visit" in back.text and back.text.count('class="label new"') == 1
        # within the same visit the baseline stays, so a reload still shows what is new
        again = client.get("/")
        assert "1 new story</a> since your last visit" in again.text
        only_new = client.get("/api/search", params={"added_since": day_ago})
        assert [h["document"]["title"] for h in only_new.json()["hits"]] == ["Pipeline story 3"]
        client.cookies.set(VISIT_COOKIE, "garbage|2999-01-01T00:00:00+00:00")
        assert client.get("/").status_code == 200


def test_lead_images_only_when_allowed_and_without_a_referrer(archive: str) -> None:
    with TestClient(create_app(Settings(store=archive)), base_url="http://localhost") as client:
        page = client.get("/", params={"q": "pipeline"})
        assert '<img class="thumb" src="https://img.example/lead.jpg"' in page.text
        assert 'referrerpolicy="no-referrer"' in page.text and "img-src 'self' data: https:" in page.headers[
            "content-security-policy"]
        assert '<figure class="lead"><img src="https://img.example/lead.jpg"' in client.get(
            f"/doc/{doc(1, indexed=utcnow()).id}").text
    private = create_app(Settings(store=archive, web_remote_images=False))
    with TestClient(private, base_url="http://localhost") as client:
        page = client.get("/", params={"q": "pipeline"})
        assert "img.example" not in page.text and "https:" not in page.headers["content-security-policy"]


def test_feeds_page_names_each_feed_with_its_schedule_and_documents(tmp_path: Path, archive: str) -> None:
    from energywatch.models import FeedState

    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - {id: wire, name: The Wire, url: 'https://u:pw@wire.example/rss?token=T0K', language: ar}\n"
                     "  - {id: fresh, name: Not polled yet, url: 'https://fresh.example/rss'}\n", encoding="utf-8")
    store = SQLiteStore(Path(archive.removeprefix("sqlite:///")))
    polled = utcnow() - timedelta(minutes=4)
    store.save_feed_states([FeedState(feed_id="wire", url="https://wire.example/rss", last_polled_at=polled,
                                      last_success_at=polled)])
    store.close()
    with TestClient(create_app(Settings(store=archive, feeds_file=feeds)), base_url="http://localhost") as client:
        page = client.get("/feeds").text
        assert "The Wire" in page and "ar · Arabic" in page and "Not polled yet" in page and "at the next run" in page
        assert "pw" not in page.replace("https://u:***@", "") and "T0K" not in page
        assert '<a href="/?source=wire&amp;sort=date">3</a>' in page
        due = (polled + timedelta(minutes=10)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
        assert f"{due} UTC" in page


def test_a_broken_rules_file_leaves_the_search_page_working(tmp_path: Path, archive: str) -> None:
    broken = tmp_path / "alerts.yaml"
    broken.write_text("channels: {hook: {type: pager}}\nrules: []\n", encoding="utf-8")
    with TestClient(create_app(Settings(store=archive, alerts_file=broken)), base_url="http://localhost") as client:
        page = client.get("/", params={"q": "pipeline"})
        assert page.status_code == 200 and "alerts need a channel in the rules file" in page.text


def test_alerts_page_filters_and_pages(archive: str) -> None:
    with TestClient(create_app(Settings(store=archive)), base_url="http://localhost") as client:
        first = client.get("/alerts").text
        assert first.count("<tr><td><time") == 50 and "older →" in first and "1–50" in first
        second = client.get("/alerts", params={"offset": 50}).text
        assert second.count("<tr><td><time") == 10 and "older →" not in second and "← newer" in second
        grid = client.get("/alerts", params={"rule": "grid"}).text
        assert grid.count("<tr><td><time") == 20 and ">nato<" not in grid
        assert "No alert matches" in client.get("/alerts", params={"status": "sent"}).text
        assert len(client.get("/api/alerts", params={"rule": "nato", "limit": 500}).json()) == 40
