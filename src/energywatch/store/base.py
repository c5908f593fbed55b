"""The Store protocol: what every storage backend offers the pipeline, the CLI and the web UI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from energywatch.models import (
    Alert,
    Document,
    FeedItem,
    FeedState,
    SavedSearch,
    SearchQuery,
    SearchResult,
    StoreStats,
    TimelinePoint,
)


@runtime_checkable
class Store(Protocol):
    """A storage backend; implementations: SQLiteStore (embedded default), ElasticsearchStore."""

    def close(self) -> None:
        """Release connections."""

    # feed state
    def get_feed_states(self) -> dict[str, FeedState]:
        """Every remembered feed state, by feed id."""

    def save_feed_states(self, states: Sequence[FeedState]) -> None:
        """Insert or replace feed states."""

    def feed_leases(self, feed_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """The current leases on these feeds: feed id → (owner, until)."""

    def claim_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime, now: datetime,
                    take_from: Sequence[str] = ()) -> set[str]:
        """Lease feeds to one run until `until`; the ids this owner holds now (free, expired, its own, or
        held by one of `take_from`: owners known to be dead)."""

    def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        """Give back the leases this owner holds on these feeds."""

    # items and documents
    def unseen(self, items: Sequence[FeedItem]) -> list[FeedItem]:
        """The items whose document is not stored yet (by document id, then by feed GUID)."""

    def put_documents(self, documents: Sequence[Document], alerts: Sequence[Alert] = ()) -> list[str]:
        """Upsert documents, mark their items seen and add new outbox entries in one step; return ids stored.

        An alert whose id is already in the outbox is left as it is: exactly once per (rule, story, channel).
        """

    def get_document(self, doc_id: str) -> Document | None:
        """One document by id."""

    def get_documents(self, doc_ids: Sequence[str]) -> list[Document]:
        """Several documents by id, in the order asked; missing ones are left out."""

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every stored document, in batches (re-scoring, re-indexing, export)."""

    def prepare_lookups(self) -> None:
        """Before a batch's story lookups: let them see every document stored so far, by any process."""

    def find_by_content_hash(self, content_hash: str) -> Document | None:
        """The earliest stored document with exactly this normalised text, if any."""

    def find_by_bands(self, bands: Sequence[str], limit: int = 10) -> list[Document]:
        """Stored documents sharing at least one MinHash LSH band key (near-duplicate candidates)."""

    def prune(self, before: datetime, batch_size: int = 500, progress: Callable[[int], None] | None = None) -> int:
        """Delete documents published (undated: stored) before a time, keeping the outbox and story links
        consistent; how many went."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Full-text search with filters, facets and one line per story."""

    def stats(self) -> StoreStats:
        """Counts for `energywatch stats` and the UI."""

    def timeline(self, query: SearchQuery) -> list[TimelinePoint]:
        """Stories per day and label among the documents a query matches (for the UI's chart)."""

    # alert outbox
    def due_alerts(self, now: datetime) -> list[Alert]:
        """Pending alerts whose due time and retry time have come."""

    def update_alerts(self, alerts: Sequence[Alert]) -> None:
        """Replace outbox entries (status, attempts, due time)."""

    def claim_alerts(self, alerts: Sequence[Alert], now: datetime, lease: timedelta) -> list[Alert]:
        """Take due alerts for delivery until now + lease; return those this caller won (the others are
        being sent by another deliverer). An alert whose deliverer died is due again when the lease ends."""

    def last_sent_at(self, rule: str, channel: str) -> datetime | None:
        """When a rule last sent on a channel (for quiet periods)."""

    def alert_history(self, limit: int = 50, offset: int = 0, *, rule: str | None = None,
                      status: str | None = None, channel: str | None = None) -> list[Alert]:
        """Outbox entries, newest first, optionally of one rule, status or channel."""

    def documents_per_feed(self) -> dict[str, int]:
        """How many documents each feed has stored, by feed id."""

    # saved searches
    def save_search(self, saved: SavedSearch) -> None:
        """Keep a search under its name (replacing one of the same name)."""

    def saved_searches(self) -> list[SavedSearch]:
        """Every saved search, by name."""

    def delete_search(self, name: str) -> bool:
        """Forget a saved search; False when there was none of that name."""
