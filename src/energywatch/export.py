"""Export a search as CSV or JSON Lines: streamed page by page, chosen fields, no full text unless asked."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence

from energywatch.errors import ConfigError
from energywatch.models import SearchHit, SearchQuery
from energywatch.store.base import Store

FIELDS = ("id", "published_at", "title", "url", "source", "feed_id", "language", "label", "score", "themes",
          "countries", "organizations", "infrastructure", "people", "story_id", "copies", "summary", "text")
DEFAULT_FIELDS = ("published_at", "title", "url", "source", "language", "label", "score", "themes", "countries",
                  "organizations", "story_id", "copies")
PAGE = 200
MAX_ROWS = 10_000  # what both stores page through (Elasticsearch's max_result_window)


def check_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The fields asked for, in order, or a clear error naming the unknown ones."""
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ConfigError(f"unknown export field(s) {', '.join(unknown)}; choose from {', '.join(FIELDS)}")
    return tuple(dict.fromkeys(fields)) or DEFAULT_FIELDS


def _value(hit: SearchHit, field: str) -> object:
    doc = hit.document
    if field == "copies":
        return hit.copies
    if field in ("label", "score", "themes"):
        return getattr(doc.relevance, field)
    if field in ("countries", "organizations", "infrastructure", "people"):
        return getattr(doc.entities, field)
    if field == "published_at":
        return doc.published_at.isoformat() if doc.published_at else None
    if field == "story_id":
        return doc.story_id or doc.id
    return getattr(doc, field)


def hits(store: Store, query: SearchQuery, limit: int = MAX_ROWS) -> Iterator[SearchHit]:
    """Every hit of a search (up to `limit`), fetched a page at a time, without facets."""
    offset = query.offset
    remaining = min(limit, MAX_ROWS - offset)
    while remaining > 0:
        size = min(PAGE, remaining)
        page = store.search(query.model_copy(update={"offset": offset, "limit": size, "facets": False}))
        yield from page.hits
        if len(page.hits) < size:
            return
        offset += size
        remaining -= size


def as_csv(rows: Iterator[SearchHit], fields: Sequence[str]) -> Iterator[str]:
    """CSV text, header first; lists joined with '; '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for hit in rows:
        writer.writerow(["; ".join(v) if isinstance(v := _value(hit, f), tuple) else ("" if v is None else v)
                         for f in fields])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def as_jsonl(rows: Iterator[SearchHit], fields: Sequence[str]) -> Iterator[str]:
    """One JSON object per line."""
    for hit in rows:
        yield json.dumps({f: _value(hit, f) for f in fields}, ensure_ascii=False) + "\n"
