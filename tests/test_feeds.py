"""Feed parsing on real snapshots and synthetic formats, and polling against a local server."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import datetime, timedelta, timezone

import pytest
from pytest_httpserver import HTTPServer

from conftest import rss, shared_path
from energywatch.config import Settings
from energywatch.feeds import discover_feed_links, initial_state, is_due, parse_feed, poll_feed
from energywatch.http import HttpClient
from energywatch.models import Feed, FeedState

FEED = Feed(id="t", name="Test", url="https://news.example/feed", language="en", country="GB")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def corpus_feed(name: str) -> bytes:
    return shared_path("corpus", "feeds", name).read_bytes()


@pytest.mark.corpus
def test_every_corpus_feed_parses_with_expected_items() -> None:
    manifest = shared_path("corpus", "feeds", "manifest.csv")
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    problems = []
    for row in rows:
        if row["file"].endswith(".gz"):
            continue  # gzip bodies are inflated by the HTTP layer; covered in test_http
        parsed = parse_feed(FEED, corpus_feed(row["file"]), url="https://news.example/feed")
        expected = int(row["items"])
        # fewer is allowed only where the manifest counts repeated links or entries without a link,
        # which we merge or skip on purpose; never more, never zero for a non-empty feed
        if len(parsed.items) > expected or (expected and len(parsed.items) < expected * 0.45):
            problems.append(f"{row['file']}: {len(parsed.items)} items, manifest says {expected}")
        for item in parsed.items:
            if "Ã" in item.title or "Ð" in item.title or "\ufffd" in item.title:
                problems.append(f"{row['file']}: mojibake in {item.title!r}")
                break
    assert not problems, "\n".join(problems)


@pytest.mark.corpus
@pytest.mark.parametrize("name,needle", [
    ("xml/ru_orenru_windows-1251.xml", "Бузулуке"),
    ("xml/de_laut_rdf_declared-latin1-but-utf8.xml", "Angelika Express"),
    ("xml/de_golem_iso-8859-1.xml", "Red Dead"),
    ("xml/el_liberal_iso-8859-7.xml", "Πορτραίτα"),
    ("xml/zh_qq_tech_gb2312.xml", "世纪华通"),
    ("xml/tr_muhasebetr_iso-8859-9.xml", "Pillar"),
    ("xml/uk_suspilne_ukrnet_2023.xml", "Росією"),
    ("xml/en_androidauthority_decl-not-at-start.xml", "5G"),
])
def test_encodings_and_quirks(name: str, needle: str) -> None:
    parsed = parse_feed(FEED, corpus_feed(name), url="https://news.example/feed")
    assert parsed.items and any(needle in i.title for i in parsed.items), [i.title for i in parsed.items[:3]]


@pytest.mark.corpus
def test_laut_declared_latin1_is_read_as_utf8() -> None:
    parsed = parse_feed(FEED, corpus_feed("xml/de_laut_rdf_declared-latin1-but-utf8.xml"), url="https://x.example/")
    text = " ".join(i.title + i.summary for i in parsed.items)
    assert any(ch in text for ch in "äöüß") and "Ã" not in text


@pytest.mark.corpus
def test_malformed_guardian_keeps_entries_and_records_error() -> None:
    parsed = parse_feed(FEED, corpus_feed("xml/en_guardian_world_2022_malformed.xml"), url="https://x.example/")
    assert len(parsed.items) == 54 and parsed.error and "not well-formed" in parsed.error


@pytest.mark.corpus
def test_relative_atom_links_resolved_with_xml_base() -> None:
    parsed = parse_feed(FEED, corpus_feed("xml/en_tpm_news.atom"), url="https://talkingpointsmemo.com/feed/all")
    assert all(i.url.startswith("https://") for i in parsed.items)


@pytest.mark.corpus
def test_json_feed() -> None:
    parsed = parse_feed(FEED, corpus_feed("json/en_npr_technology.jsonfeed.json"), url="https://npr.example/feed.json",
                        content_type="application/json")
    assert parsed.format.startswith("json") and len(parsed.items) == 25
    assert all(i.published_at for i in parsed.items) and parsed.items[0].title


@pytest.mark.corpus
def test_tracking_parameters_stripped_from_real_feed() -> None:
    parsed = parse_feed(FEED, corpus_feed("xml/ru_by_tutby_2019.xml"), url="https://x.example/")
    assert parsed.items and not any("utm_" in i.canonical_url for i in parsed.items)


RSS091 = b"""<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title><link>https://o.example/</link>
<item><title>Pipeline news</title><link>https://o.example/a1</link><description>Gas pipeline</description></item>
</channel></rss>"""
RDF10 = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="https://r.example/">
<title>R</title><link>https://r.example/</link></channel>
<item rdf:about="https://r.example/a1"><title>Grid attack</title><link>https://r.example/a1</link>
<dc:date>2026-11-20T10:00:00Z</dc:date></item></rdf:RDF>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
<id>urn:a</id><updated>2026-11-20T10:00:00Z</updated>
<entry><title type="html">LNG &amp;amp; security</title><id>urn:a:1</id><link href="https://a.example/1"/>
<updated>2026-11-20T10:00:00Z</updated><author><name>Jane Roe</name></author><summary>Text</summary></entry></feed>"""


@pytest.mark.parametrize("body,fmt,title", [
    (RSS091, "rss091", "Pipeline news"), (RDF10, "rss10", "Grid attack"), (ATOM, "atom10", "LNG & security"),
    (rss([{"title": "Power plant", "link": "https://x.example/p?utm_source=rss&id=4", "guid": "g1",
           "pubDate": "Fri, 20 Nov 2026 10:00:00 GMT"}]), "rss20", "Power plant"),
])
def test_formats(body: bytes, fmt: str, title: str) -> None:
    parsed = parse_feed(FEED, body, url="https://x.example/feed")
    assert parsed.format.startswith(fmt) and parsed.items[0].title == title
    assert "utm_" not in parsed.items[0].canonical_url


def test_json_feed_rejects_other_json() -> None:
    from energywatch.errors import FeedParseError
    with pytest.raises(FeedParseError, match="not a JSON Feed"):
        parse_feed(FEED, json.dumps({"hello": 1}).encode(), url="https://x.example/f", content_type="application/json")


def test_discovery_links() -> None:
    html = b"""<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml">
    <link rel="alternate" type="application/atom+xml" href="https://x.example/atom"><link rel="stylesheet" href="/s.css">
    </head><body>hi</body></html>"""
    assert discover_feed_links(html, "https://x.example/news") == ("https://x.example/rss.xml", "https://x.example/atom")


def test_is_due() -> None:
    state = FeedState(feed_id="t", url=FEED.url, last_polled_at=NOW - timedelta(minutes=5))
    assert not is_due(FEED, state, NOW, 10) and is_due(FEED, state, NOW + timedelta(minutes=6), 10)
    assert not is_due(FEED, state.model_copy(update={"disabled": True}), NOW + timedelta(hours=1), 10)
    deferred = state.model_copy(update={"retry_after_until": NOW + timedelta(hours=1)})
    assert not is_due(FEED, deferred, NOW + timedelta(minutes=30), 10)


def poll(settings: Settings, feed: Feed, state: FeedState | None = None):
    async def go():
        async with HttpClient(settings) as http:
            return await poll_feed(http, feed, state or initial_state(feed), max_bytes=settings.max_feed_bytes, now=NOW)
    return asyncio.run(go())


def test_poll_conditional_get_and_unchanged_body(settings, httpserver: HTTPServer) -> None:
    body = rss([{"title": "A", "link": "https://x.example/a"}])
    feed = FEED.model_copy(update={"url": httpserver.url_for("/feed")})
    httpserver.expect_ordered_request("/feed").respond_with_data(
        body, content_type="application/rss+xml", headers={"ETag": '"v1"', "Last-Modified": "Fri, 20 Nov 2026 10:00:00 GMT"})
    first = poll(settings, feed)
    assert first.status == "ok" and first.state.etag == '"v1"' and len(first.items) == 1
    httpserver.expect_ordered_request("/feed", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    second = poll(settings, feed, first.state)
    assert second.status == "not-modified" and second.items == ()
    # a server that ignores validators and sends the same bytes: no parsing, no items
    httpserver.expect_ordered_request("/feed").respond_with_data(body, content_type="application/rss+xml")
    third = poll(settings, feed, first.state)
    assert third.status == "unchanged" and third.items == ()


def test_poll_410_disables(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/dead").respond_with_data("", status=410)
    result = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/dead")}))
    assert result.status == "gone" and result.state.disabled and "410" in (result.state.disabled_reason or "")
    again = poll(settings, FEED, result.state)
    assert again.status == "disabled"


def test_poll_429_long_retry_after_defers(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "600"})
    result = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/busy")}))
    assert result.status == "failed" and result.transient
    assert result.state.retry_after_until == NOW + timedelta(seconds=600)
    assert poll(settings, FEED, result.state).status == "deferred"


def test_poll_discovers_feed_from_html_page(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/news").respond_with_data(
        '<html><head><link rel="alternate" type="application/atom+xml" href="/atom.xml"></head></html>',
        content_type="text/html")
    httpserver.expect_request("/atom.xml").respond_with_data(ATOM, content_type="application/atom+xml")
    result = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/news")}))
    assert result.status == "ok" and result.state.discovered_url == httpserver.url_for("/atom.xml")
    assert result.items[0].title == "LNG & security"


def test_poll_html_without_feed_is_clear_error(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/plain").respond_with_data("<html><body>no feed</body></html>", content_type="text/html")
    result = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/plain")}))
    assert result.status == "failed" and "announces no RSS" in (result.error or "")


def test_poll_broken_xml_and_binary(settings, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/broken").respond_with_data(b"<rss><channel><item><title>x", content_type="text/xml")
    broken = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/broken")}))
    assert broken.status in {"ok", "failed"} and (broken.error or broken.parse_warning)
    httpserver.expect_request("/bin").respond_with_data(bytes(range(256)) * 20, content_type="application/octet-stream")
    binary = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/bin")}))
    assert binary.status == "failed" and "not a feed" in (binary.error or "")


def test_poll_windows_1251_from_header(settings, httpserver: HTTPServer) -> None:
    body = rss([{"title": "Газопровод атакован", "link": "https://x.example/ru"}], encoding="windows-1251")
    body = body.replace(b' encoding="windows-1251"', b"")  # only the HTTP header tells
    httpserver.expect_request("/ru").respond_with_data(body, content_type="application/rss+xml; charset=windows-1251")
    result = poll(settings, FEED.model_copy(update={"url": httpserver.url_for("/ru")}))
    assert result.items[0].title == "Газопровод атакован"


def test_categories_lead_image_language_and_the_longer_content() -> None:
    feed = Feed(id="f", name="F", url="https://news.example/feed")
    body = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>T</title><language>uk-UA</language>
<item><title>One</title><link>https://news.example/1</link><description>Short teaser.</description>
  <content:encoded><![CDATA[<p>The whole article: the gas storage site was hit overnight.</p>]]></content:encoded>
  <category>Energy</category><category> Gas </category><category>Energy</category>
  <media:content url="https://img.example/1.jpg" medium="image"/></item>
<item><title>Two</title><link>https://news.example/2</link>
  <media:content url="https://video.example/2.mp4" medium="video"/><media:thumbnail url="/thumbs/2.jpg"/></item>
<item><title>Three</title><link>https://news.example/3</link>
  <enclosure url="https://img.example/3.png" type="image/png" length="10"/></item>
<item><title>Four</title><link>https://news.example/4</link><media:thumbnail url="javascript:alert(1)"/></item>
</channel></rss>"""
    one, two, three, four = parse_feed(feed, body, url=feed.url).items
    assert one.summary == "The whole article: the gas storage site was hit overnight."
    assert one.categories == ("Energy", "Gas") and one.image_url == "https://img.example/1.jpg"
    assert two.image_url == "https://news.example/thumbs/2.jpg" and three.image_url == "https://img.example/3.png"
    assert four.image_url is None
    assert {i.declared_language for i in (one, two, three, four)} == {"uk"}
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "language": "ar",
                            "items": [{"id": "1", "url": "https://news.example/j1", "title": "J1",
                                       "summary": "short", "content_text": "a much longer text of the item",
                                       "tags": ["طاقة", 5], "image": "https://img.example/j1.jpg"}]}).encode()
    (item,) = parse_feed(feed, json_feed, url=feed.url, content_type="application/feed+json").items
    assert item.summary == "a much longer text of the item" and item.categories == ("طاقة",)
    assert item.image_url == "https://img.example/j1.jpg" and item.declared_language == "ar"


def test_detection_reads_past_a_long_ascii_head_and_lies_are_reported() -> None:
    feed = Feed(id="f", name="F", url="https://news.example/feed")
    titles = [f"Газопровод {i}: поставки возобновлены" for i in range(30)]
    items = "".join(f"<item><title>{t}</title><link>https://news.example/{i}</link></item>"
                    for i, t in enumerate(titles))
    padding = "<!-- " + "generated by a CMS; " * 12_000 + " -->"  # 240 kB of ASCII before any Cyrillic
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Лента</title>{padding}{items}</channel></rss>'
    parsed = parse_feed(feed, body.encode("cp1251"), url=feed.url, content_type="application/rss+xml")
    assert [i.title for i in parsed.items] == titles and parsed.title == "Лента"
    assert "a guess" in parsed.error  # no label: said, as feedparser's bozo does
    utf8_lying = '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>Ärger für Öl</title>' \
                 '</channel></rss>'
    lied = parse_feed(feed, utf8_lying.encode("utf-8"), url=feed.url, content_type="text/plain", charset="iso-8859-1")
    assert lied.title == "Ärger für Öl"
    assert "served as text/plain, not as a feed" in lied.error
    assert "the XML declaration says ISO-8859-1, but the bytes are utf-8" in lied.error
    assert "the HTTP header says iso-8859-1, but the bytes are utf-8" in lied.error
    clean = parse_feed(feed, '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Öl</title>'
                       '</channel></rss>'.encode(), url=feed.url, content_type="application/rss+xml", charset="utf-8")
    assert clean.error is None
