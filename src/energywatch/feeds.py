"""Poll one feed (conditional GET, Retry-After, discovery) and parse it into normalised items."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser
import httpx
import lxml.html
from lxml import etree

from energywatch.errors import FeedGone, FeedParseError, FetchError, TransientError
from energywatch.http import HttpClient, HttpResponse
from energywatch.models import Feed, FeedItem, FeedState
from energywatch.schedule import initial_state, is_due, replace_state
from energywatch.textutil import GUESSED, REPAIRED, codec_for, collapse_ws, decode_bytes, html_to_text
from energywatch.urls import absolute_http, canonical_url, document_id, redact_url

log = logging.getLogger(__name__)

# a server may ask for any wait in Retry-After (even 31,000 years): longer waits are cut to this
MAX_RETRY_AFTER = timedelta(days=1)

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
    dropped: dict[str, int] = field(default_factory=dict)  # entries that gave no item, by reason


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
    dropped: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _utf8_xml(content: bytes, header_charset: str | None) -> tuple[bytes, str, str | None]:
    """Re-encode a feed body as UTF-8 with a matching declaration so that no parser guesses again.

    Returns the body, the encoding it was read in and the one its XML declaration names."""
    stripped = content.lstrip()  # blank lines before <?xml make strict parsers refuse the document
    decl = _XML_DECL.match(stripped)
    declared = None
    if decl:
        found = _ENC_IN_DECL.search(decl.group(0))
        declared = found.group(1).decode("ascii") if found else None
    text, encoding = decode_bytes(stripped, declared=(header_charset, declared))
    text = text.lstrip("\ufeff")
    if decl:
        text = re.sub(r"^\s*<\?xml[^>]*\?>", '<?xml version="1.0" encoding="utf-8"?>', text, count=1, flags=re.S)
    return text.encode("utf-8"), encoding, declared


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
        return _to_datetime(feedparser._parse_date(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class _Dropped(Exception):
    """A feed entry that gives no item; the reason is counted in the run's summary."""


def _text(value: Any) -> str:
    """A feed field as text: JSON Feeds put numbers, lists or objects where strings belong."""
    return value if isinstance(value, str) else ""


def _make_item(feed: Feed, *, link: str | None, guid: str | None, title: str, summary: str,
               authors: tuple[str, ...], published: datetime | None, base: str,
               categories: tuple[str, ...] = (), image: str | None = None, language: str | None = None) -> FeedItem:
    target = link or (guid if guid and guid.startswith(("http://", "https://")) else None)
    if not target:
        raise _Dropped("no link")
    try:
        url = urljoin(base, target.strip())
    except ValueError as exc:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        raise _Dropped("invalid link") from exc
    if not url.startswith(("http://", "https://")):
        raise _Dropped("unsupported link scheme")
    if not _valid_host(url):
        raise _Dropped("invalid link")
    canon = canonical_url(url)
    return FeedItem(
        feed_id=feed.id, source=feed.name, source_country=feed.country, language_hint=feed.language,
        guid=guid, url=url, canonical_url=canon, doc_id=document_id(canon),
        title=html_to_text(title)[:1000], summary=html_to_text(summary)[:20000],
        authors=authors, published_at=published,
        categories=tuple(dict.fromkeys(c for c in (collapse_ws(c)[:200] for c in categories) if c))[:50],
        image_url=absolute_http(image, base), declared_language=_language_tag(language),
    )


def _language_tag(value: str | None) -> str | None:
    """A language tag's primary subtag, lower-case ("en-GB" → "en"), or None when it is not one."""
    if not value or not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _valid_host(url: str) -> bool:
    """Whether the HTTP client can ask for this URL at all (IDNA labels, port, characters)."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError, UnicodeError):  # idna.IDNAError is a UnicodeError
        return False
    return bool(host)


class _Items:
    """Items made from a feed's entries, with the reasons of those dropped and no duplicate."""

    def __init__(self, limit: int | None = None) -> None:
        self.items: list[FeedItem] = []
        self.dropped: dict[str, int] = {}
        self._ids: set[str] = set()
        self._limit = limit

    def add(self, feed: Feed, **entry: Any) -> None:
        if self._limit is not None and len(self.items) >= self._limit:
            # feeds list their newest entries first: a 20,000-entry archive feed costs 20,000 GETs otherwise
            self.drop(f"over the cap of {self._limit} entries per feed")
            return
        try:
            item = _make_item(feed, **entry)
        except _Dropped as why:
            self.drop(str(why))
            return
        if item.doc_id in self._ids:
            self.drop("duplicate in feed")
            return
        self._ids.add(item.doc_id)
        self.items.append(item)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def done(self) -> tuple[tuple[FeedItem, ...], str | None]:
        """The items, with GUIDs that several different links share taken away; a warning about those.

        A CMS that gives every entry one GUID would otherwise have every later entry count as seen
        once the first is stored: such entries are known by their link instead."""
        links: dict[str, set[str]] = {}
        for item in self.items:
            if item.guid:
                links.setdefault(item.guid, set()).add(item.doc_id)
        shared = {guid for guid, ids in links.items() if len(ids) > 1}
        if not shared:
            return tuple(self.items), None
        items = tuple(i.model_copy(update={"guid": None}) if i.guid in shared else i for i in self.items)
        count = sum(1 for i in self.items if i.guid in shared)
        example = sorted(shared)[0][:80]
        return items, (f"{count} entries share {len(shared)} GUID(s) with different links (e.g. {example!r}): "
                       "they are told apart by their links")


def _parse_json_feed(feed: Feed, content: bytes, base: str, max_items: int | None = None) -> ParsedFeed:
    try:
        data = json.loads(decode_bytes(content)[0])
    except json.JSONDecodeError as exc:
        raise FeedParseError(f"{base}: JSON body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise FeedParseError(f"{base}: JSON body is nested too deeply to be a feed") from exc
    if not isinstance(data, dict) or "jsonfeed.org" not in str(data.get("version", "")):
        raise FeedParseError(f"{base}: JSON body is not a JSON Feed (no jsonfeed.org version)")
    found = _Items(max_items)
    raw_items: list[Any] = data["items"] if isinstance(data.get("items"), list) else []
    home = _text(data.get("home_page_url")) or base
    for entry in raw_items:
        if not isinstance(entry, dict):
            found.drop("not an item")
            continue
        authors = entry.get("authors") or ([entry["author"]] if isinstance(entry.get("author"), dict) else [])
        names = tuple(str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name"))
        guid = entry.get("id")
        tags: list[Any] = entry["tags"] if isinstance(entry.get("tags"), list) else []
        found.add(
            feed, link=_text(entry.get("url")) or _text(entry.get("external_url")) or None,
            guid=str(guid) if isinstance(guid, (str, int)) and str(guid) else None,
            title=_text(entry.get("title")),
            summary=_longest(_text(entry.get("summary")), _text(entry.get("content_text")),
                             _text(entry.get("content_html"))),
            authors=names, published=_parse_iso(entry.get("date_published") or entry.get("date_modified")),
            base=home, categories=tuple(t for t in tags if isinstance(t, str)),
            image=_text(entry.get("image")) or _text(entry.get("banner_image")) or None,
            language=_text(entry.get("language")) or _text(data.get("language")) or None,
        )
    version = str(data.get("version", "")).rstrip("/").rsplit("/", 1)[-1]
    items, warning = found.done()
    return ParsedFeed(format=f"json{version}", title=_text(data.get("title")) or None, items=items,
                      error=warning, dropped=found.dropped)


_XML_TYPES = {"", "text/html", "application/xhtml+xml", "application/octet-stream", *_FEED_TYPES}


def _encoding_notes(content: bytes, encoding: str, content_type: str, labels: dict[str, str | None]) -> list[str]:
    """What a feed says wrongly about itself: its media type, a charset label that lies or is unknown,
    bytes that had to be guessed or repaired. Reported as the feed's warning; the items are kept."""
    notes = []
    if content_type not in _XML_TYPES and not content_type.endswith(("+xml", "/xml")):
        notes.append(f"served as {content_type}, not as a feed")
    used = encoding.split(",")[0]
    non_ascii = not content.isascii()
    for where, label in labels.items():
        if not label:
            continue
        codec = codec_for(label)
        if codec is None:
            notes.append(f"{where} names an unknown encoding {label!r}")
            continue
        family = codec.replace("_", "-").removesuffix("-sig")
        if non_ascii and not used.replace("_", "-").startswith(family.split("-le")[0].split("-be")[0]):
            notes.append(f"{where} says {label}, but the bytes are {used}")
    if GUESSED in encoding:
        notes.append(f"no encoding label fits the bytes: read as {used}, a guess")
    if REPAIRED in encoding:
        notes.append(f"the feed was decoded as {encoding}")
    return notes


def _longest(*texts: str) -> str:
    return max((t for t in texts if isinstance(t, str)), key=len, default="")


def _entry_image(entry: Any) -> str | None:
    """The entry's lead image: media:content of medium image, media:thumbnail, then an image enclosure."""
    for media in entry.get("media_content") or []:
        kind = (media.get("medium") or media.get("type") or "image").lower()
        if media.get("url") and kind.startswith("image"):
            return media["url"]
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return thumbnail["url"]
    for enclosure in entry.get("enclosures") or []:
        if (enclosure.get("type") or "").lower().startswith("image/") and enclosure.get("href"):
            return enclosure["href"]
    return None


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


def parse_feed(feed: Feed, content: bytes, *, url: str, content_type: str = "", charset: str | None = None,
               max_items: int | None = None) -> ParsedFeed:
    """Parse a feed body (RSS 0.9x/1.0/2.0, Atom, JSON Feed); HTML pages come back with feed links."""
    if _looks_like_json(content, content_type) and not content.lstrip().startswith(b"<"):
        return _parse_json_feed(feed, content, url, max_items)
    if _looks_like_html(content, content_type):
        links = discover_feed_links(content, url)
        return ParsedFeed(format="html", title=None, items=(), is_html=True, discovered=links)
    body, encoding, declared = _utf8_xml(content, charset)
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
    found = _Items(max_items)
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            for alt in entry.get("links", []):
                if alt.get("rel", "alternate") == "alternate" and alt.get("href"):
                    link = alt["href"]
                    break
        # content:encoded (or Atom content) is often the whole article beside a one-line description
        summary = _longest(entry.get("summary") or "", *(c.get("value", "") for c in entry.get("content") or []))
        authors = tuple(a.get("name") for a in entry.get("authors", []) if isinstance(a, dict) and a.get("name"))
        found.add(
            feed, link=link, guid=entry.get("id"), title=entry.get("title", ""), summary=summary,
            authors=authors,
            published=_to_datetime(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
            base=url, categories=tuple(t.get("term") or t.get("label") or "" for t in entry.get("tags") or []),
            image=_entry_image(entry),
            language=(entry.get("title_detail") or {}).get("language") or parsed.feed.get("language"),
        )
    items, warning = found.done()
    notes = _encoding_notes(content, encoding, content_type, {"the HTTP header": charset, "the XML declaration": declared})
    warning = "; ".join(filter(None, (*notes, warning))) or None
    return ParsedFeed(
        format=parsed.get("version") or "unknown",
        title=collapse_ws(parsed.feed.get("title", "")) or None,
        items=items, error="; ".join(filter(None, (error, warning))) or None, dropped=found.dropped,
    )


def hash_body(content: bytes) -> str:
    """The hash a feed's body is remembered by (an unchanged body costs no parsing)."""
    return hashlib.sha256(content).hexdigest()


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
        return PollResult(feed, "deferred", state,
                          error=f"server asked to wait until {state.retry_after_until:%Y-%m-%d %H:%M:%S}Z")
    url = state.discovered_url or feed.url
    polled = replace_state(state, last_polled_at=now)
    try:
        response = await fetch_feed(http, url, state, max_bytes)
        if response.status == 304:
            ok = replace_state(polled, last_success_at=now, last_status=304, last_error=None,
                               consecutive_failures=0, retry_after_until=None, items_last_poll=0)
            return PollResult(feed, "not-modified", ok, http_status=304, fetched_url=response.url)
        body_hash = hash_body(response.content)
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
            body_hash = hash_body(response.content)
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
                          last_modified=response.headers.get("last-modified"), dropped=parsed.dropped)
    except FeedGone as exc:
        gone = replace_state(polled, last_status=410, last_error=str(exc), disabled=True,
                             disabled_reason=f"410 Gone at {now:%Y-%m-%d %H:%M}Z: remove the feed or re-enable it")
        return PollResult(feed, "gone", gone, error=str(exc), http_status=410)
    except TransientError as exc:
        message, until = str(exc), None
        if exc.retry_after:
            wait = min(exc.retry_after, MAX_RETRY_AFTER.total_seconds())
            until = now + timedelta(seconds=wait)
            if wait < exc.retry_after:
                message += f"; waiting {MAX_RETRY_AFTER.days} day, the most energywatch waits for a Retry-After"
        failed = replace_state(polled, last_error=message, consecutive_failures=state.consecutive_failures + 1,
                               retry_after_until=until)
        return PollResult(feed, "failed", failed, error=message, transient=True)
    except (FetchError, FeedParseError) as exc:
        status = exc.status if isinstance(exc, FetchError) else None
        failed = replace_state(polled, last_status=status, last_error=str(exc),
                               consecutive_failures=state.consecutive_failures + 1)
        return PollResult(feed, "failed", failed, error=str(exc), http_status=status)
    except Exception as exc:  # a bug or a parser's surprise: this feed fails, the others go on
        log.exception("polling %s (%s) failed unexpectedly", redact_url(url), feed.id)
        message = f"{redact_url(url)}: unexpected {type(exc).__name__}: {exc}"
        failed = replace_state(polled, last_error=message, consecutive_failures=state.consecutive_failures + 1)
        return PollResult(feed, "failed", failed, error=message)


async def _parse(parse: Any, feed: Feed, response: HttpResponse) -> ParsedFeed:
    args = (feed, response.content)
    kwargs: dict[str, Any] = {"url": response.url, "content_type": response.content_type, "charset": response.charset}
    if parse is None:
        return parse_feed(*args, **kwargs)
    return await parse(*args, **kwargs)


__all__ = ["ParsedFeed", "PollResult", "discover_feed_links", "fetch_feed", "initial_state", "is_due",
           "parse_feed", "poll_feed"]
