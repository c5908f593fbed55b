"""Poll one feed (conditional GET, Retry-After, discovery) and parse it into normalised items."""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
import lxml.html
from lxml import etree

from energywatch.errors import FeedGone, FeedParseError, FetchError, TransientError
from energywatch.http import HttpClient, HttpResponse
from energywatch.models import Feed, FeedItem, FeedState
from energywatch.schedule import initial_state, is_due, replace_state
from energywatch.textutil import collapse_ws, decode_bytes, html_to_text
from energywatch.urls import canonical_url, document_id

PollStatus = Literal["ok", "not-modified", "unchanged", "failed", "gone", "deferred", "disabled"]

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>", re.S)
_ENC_IN_DECL = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_FEED_TYPES = {
    "application/rss+xml": "rss", "application/atom+xml": "atom", "application/feed+json": "json",
    "application/json": "json", "application/rdf+xml": "rss", "application/xml": "xml", "text/xml": "xml",
}


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed body held: its format, entries as items, and any parse error tolerated."""

    format: str
    title: str | None
    items: tuple[FeedItem, ...]
    error: str | None = None
    is_html: bool = False
    discovered: tuple[str, ...] = ()


@dataclass(frozen=True)
class PollResult:
    """The outcome of polling one feed; `state` is what to save once its items are stored."""

    feed: Feed
    status: PollStatus
    state: FeedState
    items: tuple[FeedItem, ...] = ()
    error: str | None = None
    transient: bool = False
    http_status: int | None = None
    parse_warning: str | None = None
    fetched_url: str | None = None
    format: str | None = None
    last_modified: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _utf8_xml(content: bytes, header_charset: str | None) -> bytes:
    """Re-encode a feed body as UTF-8 with a matching declaration so that no parser guesses again."""
    stripped = content.lstrip()  # blank lines before <?xml make strict parsers refuse the document
    decl = _XML_DECL.match(stripped)
    declared = None
    if decl:
        found = _ENC_IN_DECL.search(decl.group(0))
        declared = found.group(1).decode("ascii") if found else None
    text, _ = decode_bytes(stripped, declared=(header_charset, declared))
    text = text.lstrip("\ufeff")
    if decl:
        text = re.sub(r"^\s*<\?xml[^>]*\?>", '<?xml version="1.0" encoding="utf-8"?>', text, count=1, flags=re.S)
    return text.encode("utf-8")


def _looks_like_json(content: bytes, content_type: str) -> bool:
    return "json" in content_type or content.lstrip()[:1] == b"{"


def _looks_like_html(content: bytes, content_type: str) -> bool:
    head = content.lstrip()[:512].lower()
    return content_type in {"text/html", "application/xhtml+xml"} and not head.startswith(b"<?xml") or (
        head.startswith(b"<!doctype html") or head.startswith(b"<html")
    )


def _to_datetime(struct: Any) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), tz=timezone.utc)
    except (OverflowError, ValueError, TypeError):
        return None


def _parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _to_datetime(feedparser._parse_date(value))  # type: ignore[attr-defined]
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _make_item(feed: Feed, *, link: str | None, guid: str | None, title: str, summary: str,
               authors: tuple[str, ...], published: datetime | None, base: str) -> FeedItem | None:
    target = link or (guid if guid and guid.startswith(("http://", "https://")) else None)
    if not target:
        return None
    url = urljoin(base, target.strip())
    if not url.startswith(("http://", "https://")):
        return None
    canon = canonical_url(url)
    return FeedItem(
        feed_id=feed.id, source=feed.name, source_country=feed.country, language_hint=feed.language,
        guid=guid, url=url, canonical_url=canon, doc_id=document_id(canon),
        title=html_to_text(title)[:1000], summary=html_to_text(summary)[:20000],
        authors=authors, published_at=published,
    )


def _parse_json_feed(feed: Feed, content: bytes, base: str) -> ParsedFeed:
    try:
        data = json.loads(decode_bytes(content)[0])
    except json.JSONDecodeError as exc:
        raise FeedParseError(f"{base}: JSON body is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        raise FeedParseError(f"{base}: JSON body is not a JSON Feed (no jsonfeed.org version)")
    items: list[FeedItem] = []
    raw_items = data.get("items") if isinstance(data.get("items"), list) else []
    for entry in raw_items:
        if not isinstance(entry, dict):
            continue
        authors = entry.get("authors") or ([entry["author"]] if isinstance(entry.get("author"), dict) else [])
        names = tuple(str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name"))
        item = _make_item(
            feed, link=entry.get("url") or entry.get("external_url"), guid=str(entry.get("id") or "") or None,
            title=str(entry.get("title") or ""),
            summary=str(entry.get("summary") or entry.get("content_text") or entry.get("content_html") or ""),
            authors=names, published=_parse_iso(entry.get("date_published") or entry.get("date_modified")),
            base=str(data.get("home_page_url") or base),
        )
        if item:
            items.append(item)
    version = str(data.get("version", "")).rstrip("/").rsplit("/", 1)[-1]
    return ParsedFeed(format=f"json{version}", title=data.get("title"), items=_dedupe(items))


def discover_feed_links(content: bytes, base: str) -> tuple[str, ...]:
    """Feed URLs announced by an HTML page with <link rel="alternate" type="...">."""
    try:
        root = lxml.html.document_fromstring(decode_bytes(content)[0])
    except (etree.ParserError, ValueError):
        return ()
    found: list[str] = []
    for link in root.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().strip()
        if "alternate" in rel and _FEED_TYPES.get(kind) in {"rss", "atom", "json"}:
            href = urljoin(base, link.get("href").strip())
            if href not in found:
                found.append(href)
    return tuple(found)


def parse_feed(feed: Feed, content: bytes, *, url: str, content_type: str = "", charset: str | None = None) -> ParsedFeed:
    """Parse a feed body (RSS 0.9x/1.0/2.0, Atom, JSON Feed); HTML pages come back with feed links."""
    if _looks_like_json(content, content_type) and not content.lstrip().startswith(b"<"):
        return _parse_json_feed(feed, content, url)
    if _looks_like_html(content, content_type):
        links = discover_feed_links(content, url)
        return ParsedFeed(format="html", title=None, items=(), is_html=True, discovered=links)
    body = _utf8_xml(content, charset)
    # sanitising and URI resolution inside content cost most of feedparser's time; we keep
    # only plain text from summaries, so they buy nothing here
    parsed = feedparser.parse(
        body,
        response_headers={"content-type": "application/xml; charset=utf-8", "content-location": url},
        sanitize_html=False, resolve_relative_uris=False,
    )
    error = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        error = f"{type(exc).__name__}: {exc}" if exc else "malformed feed"
    if not parsed.get("version") and not parsed.entries:
        raise FeedParseError(f"{url}: not a feed ({error or 'no RSS, Atom or JSON Feed found'})")
    items: list[FeedItem] = []
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            for alt in entry.get("links", []):
                if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                    link = alt["href"]
                    break
        summary = entry.get("summary") or ""
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        authors = tuple(a.get("name") for a in entry.get("authors", []) if isinstance(a, dict) and a.get("name"))
        item = _make_item(
            feed, link=link, guid=entry.get("id"), title=entry.get("title", ""), summary=summary,
            authors=authors,
            published=_to_datetime(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
            base=url,
        )
        if item:
            items.append(item)
    return ParsedFeed(
        format=parsed.get("version") or "unknown",
        title=collapse_ws(parsed.feed.get("title", "")) or None,
        items=_dedupe(items), error=error,
    )


def _dedupe(items: list[FeedItem]) -> tuple[FeedItem, ...]:
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.doc_id not in seen:
            seen.add(item.doc_id)
            unique.append(item)
    return tuple(unique)


async def fetch_feed(http: HttpClient, url: str, state: FeedState, max_bytes: int) -> HttpResponse:
    """Conditional GET of a feed URL with the validators remembered from the last good poll."""
    headers: dict[str, str] = {"Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                                         "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.5, */*;q=0.1"}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return await http.get(url, max_bytes=max_bytes, headers=headers)


async def poll_feed(http: HttpClient, feed: Feed, state: FeedState, *, max_bytes: int,
                    now: datetime, parse: Any = None) -> PollResult:
    """Poll one feed once; never raises for feed problems, it reports them in the result."""
    if state.disabled:
        return PollResult(feed, "disabled", state, error=state.disabled_reason)
    if state.retry_after_until and now < state.retry_after_until:
        return PollResult(feed, "deferred", state, error=f"server asked to wait until {state.retry_after_until:%Y-%m-%d %H:%M:%S}Z")
    url = state.discovered_url or feed.url
    polled = replace_state(state, last_polled_at=now)
    try:
        response = await fetch_feed(http, url, state, max_bytes)
        if response.status == 304:
            ok = replace_state(polled, last_success_at=now, last_status=304, last_error=None,
                               consecutive_failures=0, retry_after_until=None, items_last_poll=0)
            return PollResult(feed, "not-modified", ok, http_status=304, fetched_url=response.url)
        body_hash = hashlib.sha256(response.content).hexdigest()
        if body_hash == state.body_hash:
            # some servers ignore the validators and answer 200 with the same bytes
            ok = replace_state(polled, last_success_at=now, last_status=response.status, last_error=None,
                               consecutive_failures=0, retry_after_until=None, items_last_poll=0)
            return PollResult(feed, "unchanged", ok, http_status=response.status, fetched_url=response.url)
        parsed = await _parse(parse, feed, response)
        discovered = None
        if parsed.is_html:
            if not parsed.discovered:
                raise FeedParseError(f"{url}: the URL is an HTML page that announces no RSS, Atom or JSON feed")
            discovered = parsed.discovered[0]
            response = await fetch_feed(http, discovered, FeedState(feed_id=feed.id, url=discovered), max_bytes)
            body_hash = hashlib.sha256(response.content).hexdigest()
            parsed = await _parse(parse, feed, response)
            if parsed.is_html:
                raise FeedParseError(f"{url}: the feed link {discovered} leads to another HTML page")
        new_state = replace_state(
            polled, url=feed.url, discovered_url=discovered or state.discovered_url,
            etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
            body_hash=body_hash, format=parsed.format, last_success_at=now, last_status=response.status,
            last_error=parsed.error, consecutive_failures=0, retry_after_until=None,
            items_last_poll=len(parsed.items),
        )
        return PollResult(feed, "ok", new_state, items=parsed.items, http_status=response.status,
                          parse_warning=parsed.error, fetched_url=response.url, format=parsed.format,
                          last_modified=response.headers.get("last-modified"))
    except FeedGone as exc:
        gone = replace_state(polled, last_status=410, last_error=str(exc), disabled=True,
                             disabled_reason=f"410 Gone at {now:%Y-%m-%d %H:%M}Z: remove the feed or re-enable it")
        return PollResult(feed, "gone", gone, error=str(exc), http_status=410)
    except TransientError as exc:
        until = now + timedelta(seconds=exc.retry_after) if exc.retry_after else None
        failed = replace_state(polled, last_error=str(exc), consecutive_failures=state.consecutive_failures + 1,
                               retry_after_until=until)
        return PollResult(feed, "failed", failed, error=str(exc), transient=True)
    except (FetchError, FeedParseError) as exc:
        status = exc.status if isinstance(exc, FetchError) else None
        failed = replace_state(polled, last_status=status, last_error=str(exc),
                               consecutive_failures=state.consecutive_failures + 1)
        return PollResult(feed, "failed", failed, error=str(exc), http_status=status)


async def _parse(parse: Any, feed: Feed, response: HttpResponse) -> ParsedFeed:
    args = (feed, response.content)
    kwargs = {"url": response.url, "content_type": response.content_type, "charset": response.charset}
    if parse is None:
        return parse_feed(*args, **kwargs)
    return await parse(*args, **kwargs)


__all__ = ["ParsedFeed", "PollResult", "discover_feed_links", "fetch_feed", "initial_state", "is_due",
           "parse_feed", "poll_feed"]
