"""Extraction: charset handling, date choice, the feed-summary fallback."""

import gzip
from datetime import datetime, timezone

import pytest
import trafilatura.utils
from lxml.html import HtmlElementClassLookup

from conftest import article_html, shared_path
from energywatch.extract import _use_plain_html_elements, decode_html, extract_article
from energywatch.models import FeedItem

ITEM = FeedItem(feed_id="f", source="S", url="https://x.example/a", canonical_url="https://x.example/a",
                doc_id="d", title="Feed title", summary="Feed summary of the story.",
                published_at=datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc))
PARAS = ["The grid operator reported a cyber-attack on substations overnight, cutting power to thousands of homes."] * 4


def test_page_text_metadata_and_precise_feed_time() -> None:
    art = extract_article(article_html("Grid attack", PARAS).encode(), url=ITEM.url, item=ITEM)
    assert art.method == "page" and "substations" in art.text and "All rights reserved" not in art.text
    assert art.title == "Grid attack" and art.date_source == "page"
    assert art.published_at == ITEM.published_at  # same day: the feed's time is more precise


def test_the_page_s_lead_image_is_kept_as_an_absolute_http_url() -> None:
    page = article_html("Grid attack", PARAS)
    with_image = page.replace("</head>", '<meta property="og:image" content="/media/substation.jpg"></head>')
    assert extract_article(with_image.encode(), url=ITEM.url, item=ITEM).image_url == \
        "https://x.example/media/substation.jpg"
    hostile = page.replace("</head>", '<meta property="og:image" content="javascript:alert(1)"></head>')
    assert extract_article(hostile.encode(), url=ITEM.url, item=ITEM).image_url is None
    assert extract_article(page.encode(), url=ITEM.url, item=ITEM).image_url is None


def test_disagreeing_dates_prefer_page_and_warn() -> None:
    art = extract_article(article_html("Old", PARAS, date="2020-01-05").encode(), url=ITEM.url, item=ITEM)
    assert art.published_at.date().isoformat() == "2020-01-05" and any("disagrees" in w for w in art.warnings)


def test_script_only_page_uses_feed_summary() -> None:
    art = extract_article(b"<html><body><script>app()</script></body></html>", url=ITEM.url, item=ITEM)
    assert art.method == "feed-summary" and art.text == ITEM.summary and art.warnings


def test_legacy_encodings_from_meta() -> None:
    page = shared_path("corpus", "misc-pages", "tr_muhasebetr_pillar2_windows-1254.html").read_bytes()
    text = decode_html(page)
    assert "ş" in text or "ğ" in text or "ı" in text
    cyr = '<html><head><meta charset="windows-1251"></head><body>Газ</body></html>'.encode("cp1251")
    assert "Газ" in decode_html(cyr)
    assert "Газ" in decode_html("<html><body>Газ</body></html>".encode("cp1251"), header_charset="windows-1251")


def test_form_wrapped_page_keeps_its_text() -> None:
    # ASP.NET pages wrap the whole document in one <form>: trafilatura demotes it to a container,
    # which must still work with the C-level element lookup extract.py installs
    body = "".join(f"<p>{p}</p>" for p in PARAS)
    page = (f'<html><head><title>Grid</title></head><body><form id="aspnetForm" action="/x"><input name="q">'
            f"<div><h1>Grid</h1>{body}</div></form></body></html>")
    art = extract_article(page.encode(), url=ITEM.url, item=ITEM)
    assert art.method == "page" and "substations" in art.text


@pytest.mark.corpus
def test_element_lookup_changes_no_extraction() -> None:
    # extract.py swaps lxml.html's Python-level class lookup for a C one: same Articles, less CPU
    pages = sorted(shared_path("corpus", "trafilatura-eval", "html").glob("*.html.gz"))[::12]
    pages += sorted(shared_path("corpus", "aeb", "html").glob("*.html.gz"))[::12]
    htmls = [gzip.decompress(p.read_bytes()) for p in pages]
    fast = [extract_article(h, url=ITEM.url, item=ITEM) for h in htmls]
    parser = trafilatura.utils.HTML_PARSER
    parser.set_element_class_lookup(HtmlElementClassLookup())
    try:
        slow = [extract_article(h, url=ITEM.url, item=ITEM) for h in htmls]
    finally:
        _use_plain_html_elements()
    assert len(htmls) > 20 and [p.name for p, a, b in zip(pages, fast, slow) if a != b] == []
