"""Hostile and broken feeds on a local server: each one fails alone, and a healthy feed in the same run is
stored in full (issue 15: "one feed never stops the others")."""

from __future__ import annotations

import base64
import json

from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import rss
from energywatch.config import Settings
from energywatch.models import Feed
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore
from test_pipeline import serve_articles

JSON_FEED = "https://jsonfeed.org/version/1.1"


def _feeds(server: HTTPServer) -> list[Feed]:
    good = serve_articles(server, 4, prefix="control")
    server.expect_request("/control.rss").respond_with_data(rss(good), content_type="application/rss+xml")
    extra = serve_articles(server, 3, prefix="extra")
    # 429 asking to wait 31,000 years: an OverflowError in date arithmetic before
    server.expect_request("/forever.rss").respond_with_data("slow down", status=429,
                                                            headers={"Retry-After": "1000000000000"})
    # a JSON Feed item whose url is a number, beside a good one
    server.expect_request("/number.json").respond_with_json(
        {"version": JSON_FEED, "title": "n", "items": [{"id": "1", "url": 5, "title": "five"},
                                                       {"id": "2", "url": extra[0]["link"], "title": "ok"}]})
    # a link with an invalid IDNA label, beside a good one
    server.expect_request("/idna.rss").respond_with_data(rss([
        {"title": "bad", "link": "http://xn--/", "guid": "idna-1"},
        {"title": "ok", "link": extra[1]["link"], "guid": "idna-2"}]), content_type="application/rss+xml")
    # JSON nested 200,000 deep: a RecursionError in the parser before
    deep = b'{"version": "' + JSON_FEED.encode() + b'", "items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    server.expect_request("/deep.json").respond_with_data(deep, content_type="application/feed+json")
    basic = "Basic " + base64.b64encode(b"reader:s3cret").decode()
    server.expect_request("/private.rss", headers={"Authorization": basic}).respond_with_data(rss([extra[2]]), content_type="application/rss+xml")
    host = server.url_for("/").split("//", 1)[1]
    return [
        Feed(id="control", name="Control", url=server.url_for("/control.rss"), language="en"),
        Feed(id="forever", name="Forever", url=server.url_for("/forever.rss")),
        Feed(id="number", name="Number", url=server.url_for("/number.json")),
        Feed(id="idna", name="IDNA", url=server.url_for("/idna.rss")),
        Feed(id="deep", name="Deep", url=server.url_for("/deep.json")),
        # credentials in the feed URL (a private feed): sent as Basic auth, never shown
        Feed(id="private", name="Private", url=f"http://reader:s3cret@{host}private.rss"),
    ]


def test_every_hostile_feed_fails_alone(settings: Settings, store: SQLiteStore, httpserver: HTTPServer) -> None:
    feeds = _feeds(httpserver)
    summary = run(settings, feeds, store)
    assert summary.documents_stored == 4 + 3, summary.failures
    failed = {f.feed_id: f for f in summary.failures}
    assert "Retry-After" in failed["forever"].reason and failed["forever"].transient
    assert "deep" in failed and "nested too deeply" in failed["deep"].reason
    assert "control" not in failed and "private" not in failed
    assert all("s3cret" not in f.reason and "s3cret" not in f.url for f in summary.failures)
    states = store.get_feed_states()
    # the wait is capped (a day), reported, and the feed is polled again after it
    assert states["forever"].retry_after_until is not None
    assert (states["forever"].retry_after_until - summary.started_at).days <= 1
    assert summary.items_dropped == {"no link": 1, "invalid link": 1}  # the number, the xn-- link
    again = run(settings, feeds, store)
    assert again.documents_stored == 0 and "forever" not in {f.feed_id for f in again.failures}


def test_an_item_without_any_usable_link_is_counted(settings: Settings, store: SQLiteStore,
                                                    httpserver: HTTPServer) -> None:
    items = serve_articles(httpserver, 1, prefix="counted")
    body = rss([{"title": "no link", "description": "an entry with neither link nor guid"}, {"title": "js", "link": "javascript:alert(1)", "guid": "js"},
                {"title": "file", "link": "file:///etc/passwd", "guid": "file"}, items[0],
                {**items[0], "guid": "counted-again"}])
    httpserver.expect_request("/counted.rss").respond_with_data(body, content_type="application/rss+xml")
    summary = run(settings, [Feed(id="counted", name="Counted", url=httpserver.url_for("/counted.rss"))], store)
    assert summary.documents_stored == 1
    assert summary.items_dropped == {"no link": 1, "unsupported link scheme": 2, "duplicate in feed": 1}
    assert json.loads(summary.model_dump_json())["items_dropped"]["no link"] == 1


def test_a_feed_giving_every_entry_one_guid_still_delivers_new_entries(settings: Settings, store: SQLiteStore,
                                                                       httpserver: HTTPServer) -> None:
    items = [{**item, "guid": "https://cms.example/guid"} for item in serve_articles(httpserver, 4, prefix="oneguid")]
    bodies = iter([rss(items[:2]), rss(items)])
    httpserver.expect_request("/oneguid.rss").respond_with_handler(
        lambda request: Response(next(bodies), content_type="application/rss+xml"))
    feed = [Feed(id="oneguid", name="One GUID", url=httpserver.url_for("/oneguid.rss"))]
    assert run(settings, feed, store).documents_stored == 2
    second = run(settings, feed, store)
    assert second.documents_stored == 2  # the two new entries, though their GUID was seen
    assert any("share 1 GUID(s) with different links" in f.reason for f in second.failures)


def test_a_page_not_up_yet_is_fetched_again_not_kept_as_a_summary(settings: Settings, store: SQLiteStore,
                                                                   httpserver: HTTPServer) -> None:
    from email.utils import format_datetime

    from conftest import article_html
    from energywatch.models import utcnow

    answers = iter([Response("not yet", status=404),
                    Response(article_html("Late page", ["The compressor station was hit by a drone attack. " * 8]),
                             content_type="text/html; charset=utf-8")])
    httpserver.expect_request("/late").respond_with_handler(lambda request: next(answers))
    old = serve_articles(httpserver, 1, prefix="gone")[0]
    httpserver.expect_request("/gone-page").respond_with_data("gone", status=404)
    body = rss([{"title": "Late page", "link": httpserver.url_for("/late"), "guid": "late",
                 "description": "Summary of the late page", "pubDate": format_datetime(utcnow())},
                {**old, "link": httpserver.url_for("/gone-page"), "guid": "gone-page"}])  # dated 2026-11-20
    httpserver.expect_request("/late.rss").respond_with_data(body, content_type="application/rss+xml")
    feed = [Feed(id="late", name="Late", url=httpserver.url_for("/late.rss"), language="en")]
    first = run(settings, feed, store)
    # the old entry's page is gone for good: its summary is kept; the fresh one is tried again
    assert first.documents_stored == 1 and first.documents_from_summary == 1
    assert any(f.transient and "may not be up yet" in f.reason for f in first.failures)
    second = run(settings, feed, store)
    assert second.documents_stored == 1 and second.documents_from_summary == 0
    late = [d for d in store.iter_documents() if d.title == "Late page"]
    assert len(late) == 1 and late[0].extraction == "page" and "drone attack" in late[0].text


def test_one_invalid_byte_does_not_garble_a_utf8_feed_or_page(settings: Settings, store: SQLiteStore,
                                                             httpserver: HTTPServer) -> None:
    from conftest import article_html

    title = "Газопровод повреждён"
    page = article_html(title, ["Оператор газотранспортной системы сообщил о повреждении газопровода. " * 6],
                        lang="ru").encode("utf-8")
    broken_page = page.replace("Оператор".encode(), "Оператор".encode() + b"\xff", 1)
    httpserver.expect_request("/ru/page").respond_with_data(broken_page, content_type="text/html")
    entries = [{"title": f"{title} {i}", "link": httpserver.url_for(f"/ru/{'page' if i == 0 else i}"),
                "guid": f"ru-{i}", "description": "Сводка"} for i in range(21)]
    for i in range(1, 21):
        httpserver.expect_request(f"/ru/{i}").respond_with_data(page, content_type="text/html; charset=utf-8")
    body = rss(entries).replace(b"</title>", b"\xc0</title>", 1)  # one stray byte, in the channel title
    httpserver.expect_request("/ru.rss").respond_with_data(body, content_type="application/rss+xml")
    summary = run(settings, [Feed(id="ru", name="RU", url=httpserver.url_for("/ru.rss"), language="ru")], store)
    assert summary.documents_stored == 21
    documents = list(store.iter_documents())
    assert all(d.title.startswith(title) for d in documents)  # not Ð“Ð°Ð·...
    broken = next(d for d in documents if d.url.endswith("/ru/page"))
    assert "Оператор\ufffd" in broken.text and "повреждении" in broken.text
    assert any("1 invalid byte sequence(s) replaced" in w for w in broken.warnings)
    assert any("decoded as utf-8, 1 invalid byte sequence(s) replaced" in f.reason for f in summary.failures)


def test_impossible_dates_are_replaced_by_the_fetch_time_and_kept_in_a_warning(
        settings: Settings, store: SQLiteStore, httpserver: HTTPServer) -> None:
    from conftest import article_html

    items = []
    for i, (page_date, feed_date) in enumerate((("9999-12-31", "Fri, 31 Dec 9999 23:59:59 GMT"),
                                                ("0001-01-01", "Mon, 01 Jan 0001 00:00:00 GMT"))):
        body = article_html(f"When {i}", ["The grid operator reported an attack on a substation. " * 8],
                            date=page_date)
        httpserver.expect_request(f"/when/{i}").respond_with_data(body, content_type="text/html")
        items.append({"title": f"When {i}", "link": httpserver.url_for(f"/when/{i}"), "guid": f"when-{i}",
                      "pubDate": feed_date})
    httpserver.expect_request("/when.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    summary = run(settings, [Feed(id="when", name="When", url=httpserver.url_for("/when.rss"))], store)
    assert summary.documents_stored == 2
    for doc in store.iter_documents():
        assert doc.published_at == doc.fetched_at, doc.published_at
        assert doc.date_source == "fetched"
        assert any("implausible" in w and ("9999" in w or "0001" in w) for w in doc.warnings), doc.warnings
