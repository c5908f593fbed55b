"""HTML page → Article with trafilatura; the feed's own summary when the page has no usable text."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import trafilatura
import trafilatura.utils
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from trafilatura.meta import reset_caches
from trafilatura.settings import set_date_params

from energywatch.models import Article, DateSource, ExtractionMethod, FeedItem
from energywatch.textutil import REPAIRED, collapse_ws, decode_bytes
from energywatch.urls import absolute_http

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_CALLS_BETWEEN_RESETS = 500
_calls = 0


def _use_plain_html_elements() -> None:
    """Give trafilatura's HTML parser a class lookup that runs in C.

    lxml.html's default lookup is a Python method called for every element proxy lxml creates, about a
    million per thousand pages; it exists to hand out form-control classes (InputElement…) that
    trafilatura never uses. Every element is still an HtmlElement, so extraction is unchanged (the
    tests compare both on corpus pages) and ~7% cheaper.
    """
    parser = getattr(trafilatura.utils, "HTML_PARSER", None)
    if parser is not None:  # a future trafilatura may name it otherwise: then only the speed-up is lost
        parser.set_element_class_lookup(etree.ElementDefaultClassLookup(
            element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))


_use_plain_html_elements()


def decode_html(data: bytes, header_charset: str | None = None) -> str:
    """Decode a page: BOM, valid UTF-8, the HTTP charset, the <meta> charset, then detection."""
    return decode_page(data, header_charset)[0]


def decode_page(data: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """A page's text and the encoding it was read in (see textutil.decode_bytes)."""
    meta = _META_CHARSET.search(data[:8192])
    return decode_bytes(data, declared=(header_charset, meta.group(1).decode("ascii") if meta else None))


def _page_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _choose_date(page: datetime | None, feed: datetime | None) -> tuple[datetime | None, DateSource, str | None]:
    """Page date first (structured data, then htmldate); the feed's when it agrees and is more precise."""
    if page and feed:
        if abs(page - feed) <= timedelta(days=1, hours=12):
            return feed, "page", None
        return page, "page", f"page date {page:%Y-%m-%d} disagrees with feed date {feed:%Y-%m-%d}"
    if page:
        return page, "page", None
    if feed:
        return feed, "feed", None
    return None, "none", None


def extract_article(html: bytes | str, *, url: str, item: FeedItem, header_charset: str | None = None,
                    min_text_chars: int = 200) -> Article:
    """Extract text and metadata from a page; fall back to the feed summary when it has too little text."""
    global _calls
    _calls += 1
    if _calls % _CALLS_BETWEEN_RESETS == 0:
        reset_caches()  # trafilatura's LRU caches grow without bound in long-lived workers
    source, encoding = decode_page(html, header_charset) if isinstance(html, bytes) else (html, "")
    warnings: list[str] = [f"page decoded as {encoding}"] if REPAIRED in encoding else []
    try:
        doc = trafilatura.bare_extraction(
            source, url=url, with_metadata=True, fast=True, include_comments=False, include_tables=True,
            # htmldate's extensive search scans the text with dateparser: about a sixth of all extraction
            # CPU, and seconds of regex compiling in every new worker. Only worth it when the feed gave
            # no date; otherwise the page's structured date (or the feed's) is enough.
            date_extraction_params=set_date_params(extensive=item.published_at is None),
        )
        if isinstance(doc, dict):  # only with as_dict=True, which we never pass: keep the types honest
            doc = None
    except Exception as exc:  # trafilatura raises a zoo of lxml/ValueError types on hostile markup
        doc = None
        warnings.append(f"extraction failed: {type(exc).__name__}: {exc}")
    text = collapse_ws(doc.text or "") if doc else ""
    title = collapse_ws((doc.title if doc else None) or "") or item.title
    authors = tuple(a.strip() for a in ((doc.author if doc else None) or "").split(";") if a.strip()) or item.authors
    published, date_source, date_warning = _choose_date(_page_date(doc.date if doc else None), item.published_at)
    if date_warning:
        warnings.append(date_warning)
    description = collapse_ws((doc.description if doc else None) or "")
    summary = item.summary or description
    if len(text) >= min_text_chars or len(text) >= len(item.summary):
        if len(text) < min_text_chars:
            warnings.append(f"page yielded only {len(text)} characters of text")
        return Article(title=title, text=text, summary=summary, authors=authors, published_at=published,
                       date_source=date_source, site_name=doc.sitename if doc else None,
                       image_url=absolute_http(doc.image if doc else None, url),
                       method=ExtractionMethod.PAGE, warnings=tuple(warnings))
    warnings.append(
        f"page yielded {len(text)} characters of text (paywall, consent wall or script-only page?): "
        "stored the feed's summary instead"
    )
    return Article(title=title, text=item.summary, summary=summary, authors=authors, published_at=published,
                   date_source=date_source, site_name=doc.sitename if doc else None,
                   image_url=absolute_http(doc.image if doc else None, url),
                   method=ExtractionMethod.FEED_SUMMARY, warnings=tuple(warnings))


def article_from_feed(item: FeedItem, reason: str) -> Article:
    """An Article built from the feed entry alone, when the page could not be fetched or used."""
    return Article(
        title=item.title, text=item.summary, summary=item.summary, authors=item.authors,
        published_at=item.published_at, date_source="feed" if item.published_at else "none",
        method=ExtractionMethod.FEED_SUMMARY, warnings=(reason,),
    )
