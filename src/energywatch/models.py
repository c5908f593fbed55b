"""The plain data passed between stages; nothing here does I/O."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


# where a published date came from: the page, the feed, the fetch time (none was plausible), nowhere
DateSource = Literal["page", "feed", "fetched", "none"]

class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Feed(_Frozen):
    """One configured source, as written in the feed list."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str
    url: str
    language: str | None = None
    country: str | None = None
    interval_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    enabled: bool = True
    tags: tuple[str, ...] = ()


class FeedState(_Frozen):
    """What we remember about a feed between polls."""

    feed_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    discovered_url: str | None = None
    format: str | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    items_last_poll: int = 0
    # when a poll last brought an item not stored before: `watch` polls a feed by how recent this is
    last_new_at: datetime | None = None
    consecutive_failures: int = 0
    retry_after_until: datetime | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    # entries whose page failed transiently, by document id: in how many runs in a row
    page_attempts: dict[str, int] = Field(default_factory=dict)


class FeedItem(_Frozen):
    """One entry of a feed, normalised; identity is the canonical URL."""

    feed_id: str
    source: str
    source_country: str | None = None
    language_hint: str | None = None
    guid: str | None = None
    url: str
    canonical_url: str
    doc_id: str
    title: str = ""
    summary: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    categories: tuple[str, ...] = ()  # the feed's own categories or tags for the entry
    image_url: str | None = None  # the lead image: media:content, media:thumbnail, an image enclosure
    declared_language: str | None = None  # what the entry or its feed says its language is


class ExtractionMethod(StrEnum):
    PAGE = "page"
    FEED_SUMMARY = "feed-summary"


class Article(_Frozen):
    """Text and metadata extracted from one page (or the feed summary when the page had none)."""

    title: str
    text: str
    summary: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    date_source: DateSource = "none"
    site_name: str | None = None
    image_url: str | None = None  # the page's lead image (og:image, twitter:image)
    method: ExtractionMethod = ExtractionMethod.PAGE
    warnings: tuple[str, ...] = ()


class Evidence(_Frozen):
    """One matched concept and the sentence it was found in."""

    concept: str
    axis: str
    term: str
    sentence: str
    in_title: bool = False


class Relevance(_Frozen):
    """Energy-security relevance of a document, with the evidence behind it."""

    score: float = Field(default=0.0, ge=0.0, le=1.0)
    label: Literal["core", "related", "none"] = "none"
    themes: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()


class Entities(_Frozen):
    """Normalised entity ids, the same whatever the language of the article."""

    countries: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    infrastructure: tuple[str, ...] = ()
    people: tuple[str, ...] = ()


class Document(_Frozen):
    """The stored unit: one per canonical article URL."""

    id: str
    url: str
    canonical_url: str
    domain: str
    feed_id: str
    source: str
    source_country: str | None = None
    guid: str | None = None
    title: str
    text: str
    summary: str = ""
    authors: tuple[str, ...] = ()
    published_at: datetime | None = None
    date_source: str = "none"
    fetched_at: datetime
    indexed_at: datetime | None = None
    language: str | None = None
    language_confidence: float | None = None
    extraction: ExtractionMethod = ExtractionMethod.PAGE
    warnings: tuple[str, ...] = ()
    relevance: Relevance = Relevance()
    entities: Entities = Entities()
    story_id: str | None = None
    duplicate_of: str | None = None
    content_hash: str | None = None
    lsh_bands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    image_url: str | None = None
    declared_language: str | None = None
    # stemmed title and text terms as enrichment computed them in a worker process, so that the
    # SQLite full-text index need not analyse the text a second time; never stored or serialised
    index_terms: tuple[str, str] | None = Field(default=None, exclude=True, repr=False)


SortOrder = Literal["relevance", "date"]


class SearchQuery(_Frozen):
    """A search over stored documents; every filter is optional."""

    text: str = ""
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    labels: tuple[str, ...] = ()
    min_score: float | None = None
    themes: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    infrastructure: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    story_id: str | None = None
    added_since: datetime | None = None  # stored at or after this time ("new since my last visit")
    group_stories: bool = True
    sort: SortOrder = "relevance"
    limit: int = Field(default=20, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    facets: bool = True


class SavedSearch(_Frozen):
    """A search kept by name; with channels, each new story it matches is also an alert."""

    # its alert rule is saved.NAME, within a rule name's 64 characters
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,57}$")
    text: str = Field(default="", max_length=500)
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    labels: tuple[Literal["core", "related", "none"], ...] = ()
    themes: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    channels: tuple[str, ...] = ()  # alert channels of the rules file; none: a search only
    created_at: datetime

    def query(self, **changes: object) -> SearchQuery:
        """The SearchQuery this saved search runs."""
        return SearchQuery(text=self.text, languages=self.languages, sources=self.sources, labels=self.labels,
                           themes=self.themes, countries=self.countries, organizations=self.organizations,
                           min_score=self.min_score).model_copy(update=changes)


class SearchHit(_Frozen):
    """One result line: a document (the best of its story when grouping) and a snippet."""

    document: Document
    score: float
    snippet: str
    highlights: tuple[tuple[int, int], ...] = ()
    copies: int = 1


class FacetValue(_Frozen):
    value: str
    count: int


class SearchResult(_Frozen):
    """Hits, the total that matched, and facet counts over the whole match."""

    total: int
    hits: tuple[SearchHit, ...]
    facets: dict[str, tuple[FacetValue, ...]] = {}
    # False: more matched than the store counts exactly; `total` is a lower bound ("10,000+")
    total_exact: bool = True
    # set when the facets were counted on a sample of the matches and scaled: how many matched
    facets_sample: int | None = None


class TimelinePoint(_Frozen):
    """Stories published on one day with one label."""

    day: str
    label: str
    stories: int
    # True: counted on a regular sample of a very large match and scaled (the embedded store)
    estimated: bool = False


class StoreStats(_Frozen):
    """Counts a user wants at a glance."""

    documents: int
    stories: int
    feeds: int
    feeds_failing: int
    feeds_disabled: int
    by_language: dict[str, int]
    by_label: dict[str, int]
    by_extraction: dict[str, int]
    oldest_published: datetime | None
    newest_published: datetime | None
    last_indexed: datetime | None
    # Elasticsearch: the analyzer each language's text fields use (standard where the server lacks one)
    analyzers: dict[str, str] = Field(default_factory=dict)


class Failure(_Frozen):
    """One thing that went wrong in a run, named so that a person can act on it."""

    stage: str
    feed_id: str | None
    url: str
    reason: str
    transient: bool


class RunSummary(BaseModel):
    """Counts and per-stage times of one run; printed by the CLI, stored by the DAG."""

    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    feeds_polled: int = 0
    feeds_not_modified: int = 0
    feeds_unchanged_body: int = 0
    feeds_failed: int = 0
    feeds_skipped: int = 0
    feeds_busy: int = 0  # planned feeds left alone because another run held them
    items_seen: int = 0
    items_dropped: dict[str, int] = Field(default_factory=dict)  # entries no item came from, by reason
    items_new: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    documents_stored: int = 0
    documents_from_summary: int = 0
    alerts_queued: int = 0
    worker_restarts: int = 0  # worker pools started again after a worker died (OOM, crash, kill)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    failures: list[Failure] = Field(default_factory=list)
    aborted: str | None = None  # why the run ended early (the store failed), if it did

    def add_time(self, stage: str, seconds: float) -> None:
        """Accumulate time spent in one stage."""
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds


class Alert(_Frozen):
    """One outbox entry: a rule matched a story, to be sent on one channel exactly once."""

    id: str
    rule: str
    channel: str
    mode: Literal["instant", "digest"] = "instant"
    story_id: str
    doc_id: str
    title: str
    url: str
    source: str
    language: str | None = None
    label: str = "none"
    score: float = 0.0
    themes: tuple[str, ...] = ()
    organizations: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    published_at: datetime | None = None
    created_at: datetime
    due_at: datetime
    status: Literal["pending", "sent"] = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
