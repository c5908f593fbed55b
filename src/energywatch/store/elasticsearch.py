"""The production store: Elasticsearch behind the same Store protocol as SQLite.

Documents live in a versioned index behind an alias (energywatch-documents →
energywatch-documents-v1); feed state and seen GUIDs in their own indices, so that many
Airflow workers share them. Writes are idempotent upserts by deterministic _id.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    TransportError,
    helpers,
)

from energywatch.errors import StoreError, StoreUnavailable
from energywatch.models import (
    Alert,
    Document,
    FacetValue,
    FeedItem,
    FeedState,
    SavedSearch,
    SearchHit,
    SearchQuery,
    SearchResult,
    StoreStats,
    TimelinePoint,
    utcnow,
)
from energywatch.snippets import Snippet
from energywatch.store.es_mapping import (
    ANALYZERS,
    TEXT_SUFFIXES,
    mapping_version,
    state_mappings,
    template_body,
    text_suffix,
)
from energywatch.store.query import AnyOf, Node, Not, ParsedQuery, Term, searchable
from energywatch.urls import split_credentials

log = logging.getLogger(__name__)

INDEX_VERSION = 1
FACET_SIZE = 25
STORY_COUNT_PRECISION = 40_000  # the cardinality aggregation's threshold: story counts above it are estimates
_MARK_START, _MARK_END = "\u0002", "\u0003"  # highlight tags no article text contains
_FACETS = {"language": "language", "source": "source", "label": "relevance.label", "themes": "relevance.themes",
           "countries": "entities.countries", "organizations": "entities.organizations",
           "infrastructure": "entities.infrastructure", "people": "entities.people"}
_BULK_BYTES = 5 * 1024 * 1024
MAX_RESULT_WINDOW = 10_000  # index.max_result_window's default: from + size beyond it is refused


_PRIVILEGES = ("ingest needs read, write, maintenance and view_index_metadata on the energywatch indices, "
               "set-up (`energywatch es setup`) an administrator")


def _wrap(action: str, exc: Exception) -> StoreError:
    if isinstance(exc, AuthenticationException):
        return StoreError(f"Elasticsearch refused the credentials ({action}, HTTP 401): check the user and password "
                          "in the store URL, or ENERGYWATCH_ES_API_KEY")
    if isinstance(exc, AuthorizationException):
        return StoreError(f"the Elasticsearch user may not do this ({action}, HTTP 403: {exc.message}); {_PRIVILEGES}")
    if isinstance(exc, TransportError) or (isinstance(exc, ApiError) and exc.meta.status in (429, 502, 503, 504)):
        return StoreUnavailable(f"Elasticsearch {action} failed, retry later: {exc}")
    return StoreError(f"Elasticsearch {action} failed: {exc}")


class ElasticsearchStore:
    """Store on an Elasticsearch cluster (9.x).

    Consistency: Elasticsearch's searches see a write only after a refresh (every second by default),
    while its document GETs see it at once. The lookups that decide what the pipeline stores or sends
    see every write completed before them, by any process: seen items and documents by id (realtime
    GETs), feed state and the alert outbox (their small indices are refreshed first), and story
    lookups, after `prepare_lookups()` at the start of each batch (the batch's own documents are
    compared in memory). Everything else reads this store object's own writes (it refreshes what it
    wrote) and other processes' writes within the refresh interval.
    """

    def __init__(self, client: Elasticsearch, *, prefix: str = "energywatch", refresh: bool = False,
                 shards: int = 1, replicas: int = 1, refresh_interval: str = "1s") -> None:
        self.client = client
        self.prefix = prefix
        self.alias = f"{prefix}-documents"
        self.index = f"{self.alias}-v{INDEX_VERSION}"
        self.feeds_index = f"{prefix}-feeds"
        self.seen_index = f"{prefix}-seen"
        self.alerts_index = f"{prefix}-alerts"
        self.leases_index = f"{prefix}-leases"
        self.saved_index = f"{prefix}-saved"
        # refresh=True: every write waits until it is searchable (small setups); else writes return at
        # once and reads refresh first where they must see them (_refresh)
        self._refresh_mode: Any = "wait_for" if refresh else False
        self._unrefreshed: set[str] = set()
        self._bulk_problem = ""  # why the first refused item of the last bulk request was refused
        self._settings: dict[str, Any] = {"shards": shards, "replicas": replicas, "refresh_interval": refresh_interval}
        self.ensure_indices()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ElasticsearchStore:
        """Connect from http(s)://user:pass@host:9200 (credentials may also come from the environment)."""
        return cls(client_from_url(url), **kwargs)

    # set-up ------------------------------------------------------------------------------------------
    def ensure_indices(self) -> None:
        """Create or migrate the template, the versioned index with its alias and the state indices.

        Idempotent. A user without the privilege to manage templates (ingest, the web UI: least
        privilege) skips this, as long as an administrator has set the store up (`energywatch es setup`).
        """
        try:
            try:
                outdated = self._template_version() != mapping_version()
            except AuthorizationException:
                self._check_set_up()
                return
            if outdated:
                analyzers = available_analyzers(self.client)
                body = template_body(f"{self.alias}-v*", **self._settings, analyzers=analyzers)
                self.client.indices.put_index_template(name=self.alias, **body)
            if not self.client.indices.exists_alias(name=self.alias):
                self._create(self.index, aliases={self.alias: {"is_write_index": True}})
            elif outdated:
                self._migrate_mapping(body["template"]["mappings"])
            for suffix, mappings in state_mappings().items():
                index = f"{self.prefix}-{suffix}"
                if not self._create(index, mappings=mappings,
                                    settings={"number_of_replicas": self._settings["replicas"]}) and outdated:
                    # additive, as for the documents: e.g. the outbox's id field, which it is sorted on
                    self.client.indices.put_mapping(index=index, properties=mappings["properties"])
        except (ApiError, TransportError) as exc:
            raise _wrap("index set-up", exc) from exc

    def _refresh(self, *indices: str, everyone: bool = False) -> None:
        """Make completed writes visible to the searches that follow (see "Consistency" in the class doc).

        everyone=False: only what this store object wrote (read-your-writes, free when it wrote nothing);
        everyone=True: every process's writes, for the lookups that decide what the pipeline stores.
        """
        if self._refresh_mode and not everyone:
            return  # every write of this store object waited until it was searchable
        todo = set(indices) if everyone else set(indices) & self._unrefreshed
        if not todo:
            return
        try:
            self.client.indices.refresh(index=",".join(sorted(todo)), ignore_unavailable=True)
        except AuthorizationException:
            # a read-only user (the web UI): it wrote nothing, and reads within the refresh interval
            log.debug("no privilege to refresh %s: reading what Elasticsearch has made searchable", todo)
        except (ApiError, TransportError) as exc:
            raise _wrap("refresh", exc) from exc
        self._unrefreshed -= todo

    def prepare_lookups(self) -> None:
        """Before a batch's story lookups: make every document stored so far, by any process, visible."""
        self._refresh(self.alias, everyone=True)

    def reindex(self, to_version: int) -> tuple[str, str, int]:
        """Copy the documents into a new index version and swap the alias to it atomically.

        For a mapping change Elasticsearch cannot apply in place. The copy runs on the client
        (scan + bulk: servers without the reindex and data-stream modules, like the test distribution,
        can do it too, and helpers.reindex asks the data-stream API first);
        documents stored while it runs are copied again after the swap, and the old index is kept
        until someone deletes it. Returns (old index, new index, documents copied).
        """
        new = f"{self.alias}-v{to_version}"
        try:
            current = [name for name, spec in self.client.indices.get_alias(name=self.alias).items()
                       if spec["aliases"][self.alias].get("is_write_index", True)]
            old = current[0]
            if old == new or self.client.indices.exists(index=new):
                raise StoreError(f"{new} exists already: pick a higher version (the alias points at {old})")
            started = utcnow().isoformat()
            self.client.indices.create(index=new)  # the template (energywatch-documents-v*) gives its mapping
            self.client.indices.refresh(index=old)  # the scan reads what a refresh has made searchable
            copied = self._copy(old, new, {"match_all": {}})
            self.client.indices.update_aliases(actions=[
                {"remove": {"index": old, "alias": self.alias}},
                {"add": {"index": new, "alias": self.alias, "is_write_index": True}},
            ])
            # what ingest wrote to the old index while the copy ran
            self.client.indices.refresh(index=old)
            caught_up = self._copy(old, new, {"range": {"indexed_at": {"gte": started}}})
        except (ApiError, TransportError) as exc:
            raise _wrap(f"reindexing {self.alias}", exc) from exc
        self._unrefreshed.add(self.alias)
        return old, new, copied + caught_up

    def _copy(self, source: str, target: str, query: dict[str, Any]) -> int:
        """Copy the documents a query matches from one index to another; how many were written."""
        count = 0

        def actions() -> Iterator[dict[str, Any]]:
            nonlocal count
            for hit in helpers.scan(self.client, index=source, query={"query": query}, size=500):
                count += 1
                yield {"_index": target, "_id": hit["_id"], "_source": hit["_source"]}

        failed = self._bulk(actions(), index=target)
        if failed:
            raise StoreError(f"{len(failed)} document(s) could not be copied to {target}: {self._bulk_problem}")
        return count

    def apply_layout(self) -> list[str]:
        """Give the template and the live indices this store's shards and replicas; what could not change.

        Replicas change in place; a live index keeps its number of shards, which the next index
        version (`energywatch es reindex`) takes from the template.
        """
        notes = []
        try:
            analyzers = available_analyzers(self.client)
            body = template_body(f"{self.alias}-v*", **self._settings, analyzers=analyzers)
            self.client.indices.put_index_template(name=self.alias, **body)
            indices = [self.alias, self.feeds_index, self.seen_index, self.alerts_index, self.leases_index,
                       self.saved_index]
            self.client.indices.put_settings(index=",".join(indices),
                                             settings={"number_of_replicas": self._settings["replicas"]})
            live = self.client.indices.get_settings(index=self.alias, name="index.number_of_shards")
            for index, found in live.items():
                shards = int(found["settings"]["index"]["number_of_shards"])
                if shards != self._settings["shards"]:
                    notes.append(f"{index} keeps its {shards} shard(s): the next index version gets "
                                 f"{self._settings['shards']} (`energywatch es reindex --to-version N`)")
        except (ApiError, TransportError) as exc:
            raise _wrap("changing the index layout", exc) from exc
        return notes

    def _check_set_up(self) -> None:
        missing = [name for name in (self.alias, self.feeds_index, self.seen_index, self.alerts_index, self.leases_index,
                                     self.saved_index)
                   if not self.client.indices.exists(index=name)]
        if missing:
            raise StoreError(f"Elasticsearch has no {', '.join(missing)}, and this user may not create them: run "
                             "`energywatch es setup` once as an administrator")

    def _migrate_mapping(self, mappings: dict[str, Any]) -> None:
        """Apply an additive mapping change (new fields, ignore_above) to the live index behind the alias.

        A change Elasticsearch cannot apply in place (another type or analyzer for a field) needs a new
        index version and a reindex: the error says so, and nothing is written meanwhile.
        """
        try:
            self.client.indices.put_mapping(index=self.alias, properties=mappings["properties"],
                                            meta=mappings.get("_meta"))
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            raise StoreError(f"the mapping of {self.alias} cannot be changed in place ({exc.message}): run "
                             "`energywatch es reindex --to-version N` with the next version number") from exc

    def _template_version(self) -> str | None:
        try:
            templates = self.client.indices.get_index_template(name=self.alias)["index_templates"]
        except NotFoundError:
            return None
        return (templates[0]["index_template"].get("_meta") or {}).get("mapping_version") if templates else None

    def analyzers(self) -> dict[str, str]:
        """The analyzer of each language's text fields in the live index (from its mapping's _meta)."""
        try:
            mappings = self.client.indices.get_mapping(index=self.alias)
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the mapping", exc) from exc
        meta = next(iter(mappings.values()))["mappings"].get("_meta") or {}
        return dict(meta.get("analyzers") or {})

    def _create(self, index: str, **body: Any) -> bool:
        """Create an index; False when it exists already."""
        try:
            self.client.indices.create(index=index, **body)
        except ApiError as exc:
            # another worker created it first: that is the idempotent outcome we want
            if exc.meta.status != 400 or "resource_already_exists" not in str(exc):
                raise
            return False
        return True

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def drop_all(self) -> None:
        """Delete every index and the template of this prefix (tests, re-installs)."""
        # by name: deleting by wildcard is refused under the default action.destructive_requires_name
        names = list(self.client.indices.get(index=f"{self.prefix}-*", allow_no_indices=True,
                                             ignore_unavailable=True, expand_wildcards="all"))
        if names:
            self.client.indices.delete(index=",".join(names), ignore_unavailable=True)
        try:
            self.client.indices.delete_index_template(name=self.alias)
        except NotFoundError:
            pass

    # feed state --------------------------------------------------------------------------------------
    def get_feed_states(self) -> dict[str, FeedState]:
        """Every remembered feed state, by feed id."""
        self._refresh(self.feeds_index, everyone=True)
        try:
            hits = helpers.scan(self.client, index=self.feeds_index, query={"query": {"match_all": {}}})
            states = [FeedState.model_validate(h["_source"]["state"]) for h in hits]
        except (ApiError, TransportError) as exc:
            raise _wrap("reading feed state", exc) from exc
        return {s.feed_id: s for s in states}

    def save_feed_states(self, states: Sequence[FeedState]) -> None:
        """Insert or replace feed states."""
        now = utcnow().isoformat()
        actions = ({"_index": self.feeds_index, "_id": s.feed_id,
                    "_source": {"feed_id": s.feed_id, "updated_at": now, "state": s.model_dump(mode="json")}}
                   for s in states)
        failed = self._bulk(actions, index=self.feeds_index)
        if failed:
            raise StoreError(f"could not save the state of {len(failed)} feed(s) {failed[:3]}: {self._bulk_problem}")

    # documents ---------------------------------------------------------------------------------------
    def feed_leases(self, feed_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """The current leases on these feeds: feed id → (owner, until)."""
        return {e["_id"]: (e["_source"]["owner"], datetime.fromisoformat(e["_source"]["until"]))
                for e in self._leases(feed_ids) if e.get("found")}

    def _leases(self, feed_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not feed_ids:
            return []
        try:
            return self.client.mget(index=self.leases_index, ids=list(feed_ids))["docs"]
        except (ApiError, TransportError) as exc:
            raise _wrap("reading feed leases", exc) from exc

    def claim_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime, now: datetime,
                    take_from: Sequence[str] = ()) -> set[str]:
        """Lease feeds to one run until `until`; the ids this owner holds now (free, expired, its own, or
        held by one of `take_from`: owners known to be dead).

        A free feed is taken with op_type create, a taken one with a write conditional on the lease's
        sequence number as just read (realtime GET): of two runs, the second one's write conflicts."""
        current = self._leases(feed_ids)
        source = {"owner": owner, "until": until.isoformat()}
        actions: list[dict[str, Any]] = []
        for feed_id, entry in zip(feed_ids, current):
            if not entry.get("found"):
                actions.append({"_op_type": "create", "_index": self.leases_index, "_id": feed_id, "_source": source})
                continue
            held = entry["_source"]
            if held.get("owner") in (owner, *take_from) or datetime.fromisoformat(held["until"]) <= now:
                actions.append({"_index": self.leases_index, "_id": feed_id, "_source": source,
                                "if_seq_no": entry["_seq_no"], "if_primary_term": entry["_primary_term"]})
        lost = set(self._bulk(actions, ignore_status=(409,), index=self.leases_index, report_ignored=True))
        return {a["_id"] for a in actions} - lost

    def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        """Give back the leases this owner holds on these feeds."""
        current = self._leases(feed_ids)
        mine = ({"_op_type": "delete", "_index": self.leases_index, "_id": e["_id"], "if_seq_no": e["_seq_no"],
                 "if_primary_term": e["_primary_term"]}
                for e in current if e.get("found") and e["_source"].get("owner") == owner)
        self._bulk(mine, ignore_status=(404, 409), index=self.leases_index)

    def unseen(self, items: Sequence[FeedItem]) -> list[FeedItem]:
        """The items whose document is not stored yet (by document id, then by feed GUID)."""
        if not items:
            return []
        try:
            known = self._existing(self.alias, list({i.doc_id for i in items}))
            guid_ids = {_seen_id(i.feed_id, i.guid): i for i in items if i.guid}
            seen = self._existing(self.seen_index, list(guid_ids))
        except (ApiError, TransportError) as exc:
            raise _wrap("checking seen items", exc) from exc
        seen_pairs = {(guid_ids[s].feed_id, guid_ids[s].guid) for s in seen}
        return [i for i in items if i.doc_id not in known and (i.feed_id, i.guid) not in seen_pairs]

    def _existing(self, index: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            response = self.client.mget(index=index, ids=ids[start:start + 1000], source=False)
            found.update(d["_id"] for d in response["docs"] if d.get("found"))
        return found

    def put_documents(self, documents: Sequence[Document], alerts: Sequence[Alert] = ()) -> list[str]:
        """Upsert documents; mark their GUIDs seen only once the document itself is stored.

        Outbox entries are created first (op_type create: an existing one is left alone), so a crash
        between the two steps can repeat the documents' write but never lose an alert.
        """
        if alerts:
            created = self._bulk(({"_op_type": "create", "_index": self.alerts_index, "_id": a.id,
                                   "_source": a.model_dump(mode="json")} for a in alerts), ignore_status=(409,),
                                 index=self.alerts_index)
            if created:
                raise StoreError(f"could not write {len(created)} alert(s) to the outbox; the documents were not "
                                 "stored either, the next run retries them")
        if not documents:
            return []
        now = utcnow()
        prepared = [d if d.indexed_at else d.model_copy(update={"indexed_at": now}) for d in documents]
        failed = set(self._bulk(({"_index": self.alias, "_id": d.id, "_source": to_source(d)} for d in prepared),
                                index=self.alias))
        stored = [d for d in prepared if d.id not in failed]
        for doc_id in failed:
            log.warning("Elasticsearch refused document %s (%s); it stays unseen and the next run retries it",
                        doc_id, self._bulk_problem)
        marks = ({"_index": self.seen_index, "_id": _seen_id(d.feed_id, d.guid),
                  "_source": {"feed_id": d.feed_id, "guid": d.guid, "doc_id": d.id}} for d in stored if d.guid)
        self._bulk(marks, index=self.seen_index)  # a lost mark only costs a re-check by document id next run
        return [d.id for d in stored]

    def _bulk(self, actions: Any, ignore_status: tuple[int, ...] = (), *, index: str,
              report_ignored: bool = False) -> list[str]:
        """streaming_bulk sized by bytes, retrying 429s with back-off; returns the ids that failed.

        Failures with a status in ignore_status are expected outcomes (an entry that exists already, a
        lost claim): never raised about, and returned only with report_ignored."""
        failed: list[str] = []
        self._bulk_problem = ""
        self._unrefreshed.add(index)
        alias_only: dict[str, Any] = {"require_alias": True} if index == self.alias else {}
        try:
            for ok, item in helpers.streaming_bulk(
                self.client, actions, chunk_size=500, max_chunk_bytes=_BULK_BYTES, raise_on_error=False,
                raise_on_exception=False, max_retries=5, initial_backoff=1, max_backoff=60, refresh=self._refresh_mode,
                # documents go through the alias; were it missing, Elasticsearch would create a concrete
                # index of that name with a dynamic mapping, and the store would be stuck with it
                **alias_only,
            ):
                result = next(iter(item.values()))
                if not ok and (report_ignored or result.get("status") not in ignore_status):
                    failed.append(result.get("_id", "?"))
                    if result.get("status") not in ignore_status and not self._bulk_problem:
                        self._bulk_problem = _item_problem(result)
        except (ApiError, TransportError) as exc:
            raise _wrap("bulk indexing", exc) from exc
        return failed

    def get_document(self, doc_id: str) -> Document | None:
        """One document by id."""
        docs = self.get_documents([doc_id])
        return docs[0] if docs else None

    def get_documents(self, doc_ids: Sequence[str]) -> list[Document]:
        """Several documents by id, in the order asked; missing ones are left out."""
        if not doc_ids:
            return []
        try:
            response = self.client.mget(index=self.alias, ids=list(doc_ids))
        except (ApiError, TransportError) as exc:
            raise _wrap("reading documents", exc) from exc
        found = {d["_id"]: from_source(d["_source"]) for d in response["docs"] if d.get("found")}
        return [found[i] for i in doc_ids if i in found]

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every stored document (scrolling through the alias)."""
        self._refresh(self.alias)
        try:
            for hit in helpers.scan(self.client, index=self.alias, size=batch_size,
                                    query={"query": {"match_all": {}}}):
                yield from_source(hit["_source"])
        except (ApiError, TransportError) as exc:
            raise _wrap("scanning documents", exc) from exc

    def find_by_content_hash(self, content_hash: str) -> Document | None:
        """The earliest stored document with exactly this normalised text."""
        hits = self._search_sources({"term": {"content_hash": content_hash}}, size=1,
                                    sort=[{"indexed_at": "asc"}, {"id": "asc"}])
        return hits[0] if hits else None

    def find_by_bands(self, bands: Sequence[str], limit: int = 10) -> list[Document]:
        """Stored documents sharing an LSH band key: those sharing the most first, newer before older."""
        if not bands:
            return []
        # one constant-score clause per key: a document's score is the number of keys it shares
        shared = {"bool": {"should": [{"constant_score": {"filter": {"term": {"lsh_bands": b}}}}
                                      for b in sorted(set(bands))]}}
        return self._search_sources(shared, size=limit, sort=["_score", {"indexed_at": "desc"}, {"id": "asc"}])

    def _search_sources(self, query: dict[str, Any], *, size: int, sort: list[Any]) -> list[Document]:
        self._refresh(self.alias)
        try:
            response = self.client.search(index=self.alias, query=query, size=size, sort=sort)
        except (ApiError, TransportError) as exc:
            raise _wrap("search", exc) from exc
        return [from_source(h["_source"]) for h in response["hits"]["hits"]]

    # alert outbox ------------------------------------------------------------------------------------
    def due_alerts(self, now: datetime) -> list[Alert]:
        """Pending alerts whose due time and retry time have come."""
        self._refresh(self.alerts_index, everyone=True)
        stamp = now.isoformat()
        query = {"bool": {"filter": [
            {"term": {"status": "pending"}}, {"range": {"due_at": {"lte": stamp}}},
            {"bool": {"should": [{"bool": {"must_not": {"exists": {"field": "next_attempt_at"}}}},
                                 {"range": {"next_attempt_at": {"lte": stamp}}}]}},
        ]}}
        try:
            response = self.client.search(index=self.alerts_index, query=query, size=1000,
                                          sort=[{"created_at": "asc"}, {"id": {"order": "asc",
                                                                                "unmapped_type": "keyword"}}])
            alerts = _alerts_from(response)
            # outbox entries are written before their documents (so a crash in between loses no alert);
            # an entry whose document was refused waits until a later run stores the document
            stored = self._existing(self.alias, list({a.doc_id for a in alerts}))
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the alert outbox", exc) from exc
        return [a for a in alerts if a.doc_id in stored]

    def update_alerts(self, alerts: Sequence[Alert]) -> None:
        """Replace outbox entries (status, attempts, due time)."""
        failed = self._bulk(({"_index": self.alerts_index, "_id": a.id, "_source": a.model_dump(mode="json")}
                             for a in alerts), index=self.alerts_index)
        if failed:
            raise StoreError(f"could not update {len(failed)} alert(s) in the outbox: {self._bulk_problem}")

    def claim_alerts(self, alerts: Sequence[Alert], now: datetime, lease: timedelta) -> list[Alert]:
        """Take due alerts for delivery until now + lease; only those this caller won come back.

        Each claim is a write conditional on the entry's sequence number as just read (realtime GET):
        of two deliverers, the second one's write conflicts (409) and it leaves that alert alone.
        """
        if not alerts:
            return []
        try:
            current = self.client.mget(index=self.alerts_index, ids=[a.id for a in alerts])["docs"]
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the alert outbox", exc) from exc
        candidates: dict[str, tuple[Alert, dict[str, Any]]] = {}
        for entry in current:
            if not entry.get("found"):
                continue
            stored = Alert.model_validate(entry["_source"])
            if stored.status != "pending" or (stored.next_attempt_at and stored.next_attempt_at > now):
                continue
            claimed = stored.model_copy(update={"next_attempt_at": now + lease})
            candidates[stored.id] = (claimed, {"_index": self.alerts_index, "_id": stored.id,
                                               "if_seq_no": entry["_seq_no"], "if_primary_term": entry["_primary_term"],
                                               "_source": claimed.model_dump(mode="json")})
        lost = set(self._bulk((action for _, action in candidates.values()), ignore_status=(409,),
                              index=self.alerts_index, report_ignored=True))
        return [claimed for aid, (claimed, _) in candidates.items() if aid not in lost]

    def last_sent_at(self, rule: str, channel: str) -> datetime | None:
        """When a rule last sent on a channel."""
        self._refresh(self.alerts_index, everyone=True)
        try:
            response = self.client.search(
                index=self.alerts_index, size=0,
                query={"bool": {"filter": [{"term": {"rule": rule}}, {"term": {"channel": channel}},
                                           {"term": {"status": "sent"}}]}},
                aggs={"last": {"max": {"field": "sent_at"}}})
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the alert outbox", exc) from exc
        return _ms(response["aggregations"]["last"].get("value"))

    def alert_history(self, limit: int = 50, offset: int = 0, *, rule: str | None = None,
                      status: str | None = None, channel: str | None = None) -> list[Alert]:
        """Outbox entries, newest first, optionally of one rule, status or channel."""
        self._refresh(self.alerts_index)
        terms = [{"term": {field: value}} for field, value in (("rule", rule), ("status", status), ("channel", channel))
                 if value is not None]
        try:
            response = self.client.search(index=self.alerts_index, size=limit, from_=offset,
                                          sort=[{"created_at": "desc"}, {"id": "asc"}],
                                          query={"bool": {"filter": terms}} if terms else {"match_all": {}})
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the alert outbox", exc) from exc
        return _alerts_from(response)

    def documents_per_feed(self) -> dict[str, int]:
        """How many documents each feed has stored, by feed id."""
        self._refresh(self.alias)
        try:
            response = self.client.search(index=self.alias, size=0, track_total_hits=False,
                                          aggs={"feeds": {"terms": {"field": "feed_id", "size": 10_000}}})
        except (ApiError, TransportError) as exc:
            raise _wrap("counting documents per feed", exc) from exc
        return {b["key"]: b["doc_count"] for b in response["aggregations"]["feeds"]["buckets"]}

    # saved searches ----------------------------------------------------------------------------------
    def save_search(self, saved: SavedSearch) -> None:
        """Keep a search under its name (replacing one of the same name)."""
        try:
            self.client.index(index=self.saved_index, id=saved.name, refresh="wait_for", document={
                "name": saved.name, "created_at": saved.created_at.isoformat(), "data": saved.model_dump(mode="json")})
        except (ApiError, TransportError) as exc:
            raise _wrap(f"saving the search {saved.name!r}", exc) from exc

    def saved_searches(self) -> list[SavedSearch]:
        """Every saved search, by name."""
        try:
            hits = helpers.scan(self.client, index=self.saved_index, query={"query": {"match_all": {}}})
            found = [SavedSearch.model_validate(h["_source"]["data"]) for h in hits]
        except (ApiError, TransportError) as exc:
            raise _wrap("reading the saved searches", exc) from exc
        return sorted(found, key=lambda s: s.name)

    def delete_search(self, name: str) -> bool:
        """Forget a saved search; False when there was none of that name."""
        try:
            self.client.delete(index=self.saved_index, id=name, refresh="wait_for")
        except NotFoundError:
            return False
        except (ApiError, TransportError) as exc:
            raise _wrap(f"deleting the saved search {name!r}", exc) from exc
        return True

    # search ------------------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchResult:
        """Full-text search with filters, facets and one line per story."""
        body = search_body(query)
        if body is None:
            return SearchResult(total=0, hits=(), facets={})
        if query.offset + query.limit > MAX_RESULT_WINDOW:
            raise StoreError(f"results {query.offset + 1}–{query.offset + query.limit} are past the first "
                             f"{MAX_RESULT_WINDOW:,} that Elasticsearch pages through: narrow the search "
                             "(a date range, a source, a label)")
        self._refresh(self.alias)
        try:
            response = self.client.search(index=self.alias, **body)
        except (ApiError, TransportError) as exc:
            raise _wrap(f"search for {query.text!r}", exc) from exc
        return parse_response(response, query)

    def timeline(self, query: SearchQuery) -> list[TimelinePoint]:
        """Stories per day and label among the documents a query matches."""
        body = search_body(query.model_copy(update={"facets": False, "group_stories": False}))
        if body is None:
            return []
        self._refresh(self.alias)
        aggs = {"days": {"date_histogram": {"field": "published_at", "calendar_interval": "day", "min_doc_count": 1},
                         "aggs": {"labels": {"terms": {"field": "relevance.label", "size": 3},
                                             "aggs": {"stories": {"cardinality": {"field": "story_id"}}}}}}}
        try:
            response = self.client.search(index=self.alias, query=body["query"], size=0, aggs=aggs)
        except (ApiError, TransportError) as exc:
            raise _wrap("timeline", exc) from exc
        return [TimelinePoint(day=day["key_as_string"][:10], label=label["key"], stories=int(label["stories"]["value"]))
                for day in response["aggregations"]["days"]["buckets"] for label in day["labels"]["buckets"]]

    def stats(self) -> StoreStats:
        """Counts for `energywatch stats` and the UI."""
        aggs: dict[str, Any] = {
            "stories": {"cardinality": {"field": "story_id"}},
            "oldest": {"min": {"field": "published_at"}}, "newest": {"max": {"field": "published_at"}},
            "last": {"max": {"field": "indexed_at"}},
            "language": {"terms": {"field": "language", "size": 100, "missing": "unknown"}},
            "label": {"terms": {"field": "relevance.label", "size": 10, "missing": "none"}},
            "extraction": {"terms": {"field": "extraction", "size": 10}},
        }
        self._refresh(self.alias)
        try:
            response = self.client.search(index=self.alias, size=0, aggs=aggs, track_total_hits=True)
        except (ApiError, TransportError) as exc:
            raise _wrap("stats", exc) from exc
        a = response["aggregations"]
        states = list(self.get_feed_states().values())
        buckets = lambda name: {b["key"]: b["doc_count"] for b in a[name]["buckets"]}  # noqa: E731
        return StoreStats(
            documents=response["hits"]["total"]["value"], stories=int(a["stories"]["value"]), feeds=len(states),
            feeds_failing=sum(1 for s in states if s.consecutive_failures and not s.disabled),
            feeds_disabled=sum(1 for s in states if s.disabled),
            by_language=buckets("language"), by_label=buckets("label"), by_extraction=buckets("extraction"),
            oldest_published=_ms(a["oldest"].get("value")), newest_published=_ms(a["newest"].get("value")),
            last_indexed=_ms(a["last"].get("value")), analyzers=self.analyzers(),
        )


    def prune(self, before: datetime, batch_size: int = 1000,
              progress: Callable[[int], None] | None = None) -> int:
        """Delete the documents published (undated: stored) before a time; how many went.

        As the SQLite store does: pending alerts for them go, sent ones stay; copies that named one
        as their original no longer point at it; seen GUIDs stay. Batch by batch, so an interrupted
        prune can be run again."""
        cutoff = _iso_z(before)
        old = {"bool": {"should": [
            {"range": {"published_at": {"lt": cutoff}}},
            {"bool": {"must_not": {"exists": {"field": "published_at"}},
                      "filter": {"range": {"indexed_at": {"lt": cutoff}}}}},
        ], "minimum_should_match": 1}}
        removed = 0
        try:
            while True:
                self._refresh(self.alias, everyone=True)
                hits = self.client.search(index=self.alias, query=old, size=batch_size, source=False,
                                          sort=["_doc"])["hits"]["hits"]
                ids = [h["_id"] for h in hits]
                if not ids:
                    return removed
                # searches and bulk writes, not _delete_by_query and _update_by_query: those come with
                # the reindex module, which not every distribution has (the test distribution lacks it)
                self._refresh(self.alerts_index, everyone=True)
                # the outbox does not index doc_id (only what delivery queries), and the pending part is small
                pending = self.client.search(index=self.alerts_index, size=10_000, source_includes=["doc_id"],
                                             query={"term": {"status": "pending"}})["hits"]["hits"]
                gone = set(ids)
                self._bulk(({"_op_type": "delete", "_index": self.alerts_index, "_id": h["_id"]} for h in pending
                            if h["_source"].get("doc_id") in gone), ignore_status=(404,), index=self.alerts_index)
                copies = self._search_sources({"terms": {"duplicate_of": ids}}, size=10_000, sort=["_doc"])
                self._bulk(({"_index": self.alias, "_id": c.id, "_source": to_source(c.model_copy(
                    update={"duplicate_of": None}))} for c in copies), index=self.alias)
                failed = self._bulk(({"_op_type": "delete", "_index": self.alias, "_id": i} for i in ids),
                                    ignore_status=(404,), index=self.alias)
                if failed:
                    raise StoreError(f"Elasticsearch refused to delete {len(failed)} document(s) while pruning "
                                     f"({self._bulk_problem}); run the prune again")
                removed += len(ids)
                if progress:
                    progress(removed)
        except (ApiError, TransportError) as exc:
            raise _wrap("pruning", exc) from exc


def _item_problem(result: dict[str, Any]) -> str:
    """Why Elasticsearch refused one item of a bulk request, in words a user can act on."""
    error = result.get("error") or {}
    reason = error.get("reason", error) if isinstance(error, dict) else error
    if result.get("status") == 403:
        return f"the Elasticsearch user may not do this (HTTP 403: {reason}); {_PRIVILEGES}"
    return f"HTTP {result.get('status')}: {reason}"


_warned_fallback: set[str] = set()


def available_analyzers(client: Elasticsearch) -> dict[str, str]:
    """Field suffix → the built-in language analyzer where this server has it, `standard` where not.

    Elastic's minimal distributions (the test one on Maven Central among them) ship without the
    analysis-common module, so `russian`, `arabic`, even `english` may be missing: a template naming
    them is refused. Asked at set-up, warned about once per process.
    """
    chosen: dict[str, str] = {}
    for suffix, analyzer in ANALYZERS.items():
        try:
            client.indices.analyze(analyzer=analyzer, text="energy")
            chosen[suffix] = analyzer
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            chosen[suffix] = "standard"
    missing = sorted(s for s, a in chosen.items() if a == "standard")
    if missing and tuple(missing) != tuple(sorted(_warned_fallback)):
        _warned_fallback.clear()
        _warned_fallback.update(missing)
        log.warning("Elasticsearch has no language analyzer for %s (the analysis-common module is missing?): "
                    "those languages are indexed with the standard analyzer, without stemming", ", ".join(missing))
    return chosen


def _alerts_from(response: Any) -> list[Alert]:
    return [Alert.model_validate(h["_source"]) for h in response["hits"]["hits"]]


def client_options(url: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Elasticsearch client options from a store URL plus ENERGYWATCH_ES_API_KEY / _CA_CERTS.

    A cluster's nodes may be listed comma-separated (http://user:pass@es1:9200,es2:9200,es3:9200): the
    client spreads requests over them and retries a request on another node when one is unreachable.
    """
    import os

    env = os.environ if environ is None else environ
    bare, user, password = split_credentials(url)
    parts = urlsplit(bare)
    hostlist = parts.netloc
    # unquoted: an Airflow connection whose host lists the nodes gives them as es1%3A9200%2Ces2%3A9200
    # each node once: the client refuses a pool that names one twice (ValueError at construction)
    hosts = list(dict.fromkeys(_host_url(parts.scheme, host) for host in unquote(hostlist).split(",") if host.strip()))
    if parts.scheme not in {"http", "https"} or not hosts:
        raise StoreError("cannot read an Elasticsearch host from the store URL (expected http(s)://host:9200, "
                         "or http(s)://host1:9200,host2:9200 for several nodes)")
    options: dict[str, Any] = {"hosts": hosts, "request_timeout": 30, "retry_on_timeout": True, "max_retries": 3}
    if user or password is not None:
        options["basic_auth"] = (unquote(user or ""), unquote(password or ""))
    elif env.get("ENERGYWATCH_ES_API_KEY"):
        options["api_key"] = env["ENERGYWATCH_ES_API_KEY"]
    if env.get("ENERGYWATCH_ES_CA_CERTS"):
        options["ca_certs"] = env["ENERGYWATCH_ES_CA_CERTS"]
    return options


def _host_url(scheme: str, host: str) -> str:
    try:
        parts = urlsplit(f"{scheme}://{host.strip()}")
        port = parts.port or 9200
    except ValueError as exc:
        raise StoreError(f"cannot read the Elasticsearch node {host.strip()!r} in the store URL: {exc}") from exc
    if not parts.hostname:
        raise StoreError(f"an empty Elasticsearch node name in the store URL ({host!r})")
    hostname = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{hostname}:{port}"


_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")


def index_prefix(url: str) -> str:
    """The index prefix a store URL names (?index_prefix=…), "energywatch" when it names none."""
    values = parse_qs(urlsplit(url).query).get("index_prefix")
    if not values:
        return "energywatch"
    if not _PREFIX.match(values[-1]):
        raise StoreError(f"index_prefix {values[-1]!r} in the store URL: use lower-case letters, digits, - and _ "
                         "(Elasticsearch index names)")
    return values[-1]


def index_layout(url: str) -> dict[str, int]:
    """The shards and replicas a store URL asks the index template for (?shards=N&replicas=N), if any.

    They apply when `energywatch es setup` writes the template (defaults: 1 shard, 1 replica); a
    single node wants replicas=0, or its indices stay yellow."""
    query = parse_qs(urlsplit(url).query)
    layout = {}
    for name, lowest in (("shards", 1), ("replicas", 0)):
        if name in query:
            value = query[name][-1]
            if not value.isdigit() or int(value) < lowest or int(value) > 1024:
                raise StoreError(f"{name}={value!r} in the store URL: give a whole number from {lowest} to 1024")
            layout[name] = int(value)
    return layout


def client_from_url(url: str) -> Elasticsearch:
    """An Elasticsearch client for a store URL (no request is made yet)."""
    options = client_options(url)
    try:
        return Elasticsearch(**options)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"cannot make an Elasticsearch client for the nodes {', '.join(options['hosts'])}: {exc}") from exc


def _seen_id(feed_id: str, guid: str | None) -> str:
    return hashlib.blake2b(f"{feed_id}\x00{guid}".encode(), digest_size=16).hexdigest()


def _iso_z(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def _ms(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc) if value is not None else None


def to_source(doc: Document) -> dict[str, Any]:
    """A Document as the _source Elasticsearch stores: title and text under their language's fields."""
    source = doc.model_dump(mode="json", exclude={"title", "text"})
    # a document of no story is a story of its own (as in SQLite): collapsing on a missing story_id
    # would fold every such document into one line
    source["story_id"] = doc.story_id or doc.id
    dated = doc.published_at or doc.fetched_at or doc.indexed_at
    source["dated_at"] = dated.isoformat() if dated else None
    suffix = text_suffix(doc.language)
    source[f"title_{suffix}"] = doc.title
    source[f"text_{suffix}"] = doc.text
    return source


def from_source(source: dict[str, Any]) -> Document:
    """The Document back from a _source."""
    data = {k: v for k, v in source.items() if not k.startswith(("title_", "text_")) and k != "dated_at"}
    suffix = text_suffix(data.get("language"))
    data["title"] = source.get(f"title_{suffix}", "")
    data["text"] = source.get(f"text_{suffix}", "")
    return Document.model_validate(data)


def _text_clause(parsed: ParsedQuery, languages: Sequence[str]) -> dict[str, Any] | None:
    """The query's tree as a bool query over every language's fields (each analysed by its own analyzer)."""
    if parsed.node is None:
        return None
    suffixes = sorted({text_suffix(lang) for lang in languages}) if languages else list(TEXT_SUFFIXES)
    fields = {None: [f"title_{s}^4" for s in suffixes] + [f"text_{s}" for s in suffixes],
              "title": [f"title_{s}" for s in suffixes], "text": [f"text_{s}" for s in suffixes]}
    return _es_clause(parsed.node, fields)


def _es_clause(node: Node, fields: dict[str | None, list[str]]) -> dict[str, Any]:
    if isinstance(node, Term):
        on = fields[node.field]
        if node.prefix:
            return {"multi_match": {"query": node.tokens[0], "fields": on, "type": "phrase_prefix"}}
        if len(node.tokens) > 1:
            return {"multi_match": {"query": node.text, "fields": on, "type": "phrase"}}
        return {"multi_match": {"query": node.tokens[0], "fields": on, "type": "cross_fields", "operator": "and"}}
    if isinstance(node, AnyOf):
        return {"bool": {"should": [_es_clause(p, fields) for p in node.parts], "minimum_should_match": 1}}
    if isinstance(node, Not):
        return {"bool": {"must": [{"match_all": {}}], "must_not": [_es_clause(node.part, fields)]}}
    must = [_es_clause(p, fields) for p in node.parts if not isinstance(p, Not)] or [{"match_all": {}}]
    must_not = [_es_clause(p.part, fields) for p in node.parts if isinstance(p, Not)]
    return {"bool": {"must": must, **({"must_not": must_not} if must_not else {})}}


def search_body(query: SearchQuery) -> dict[str, Any] | None:
    """The keyword arguments of client.search for a SearchQuery (None when nothing can match)."""
    parsed = searchable(query.text)
    text = _text_clause(parsed, query.languages)
    filters: list[dict[str, Any]] = []
    if query.languages:
        filters.append({"terms": {"language": list(query.languages)}})
    if query.sources:
        filters.append({"bool": {"should": [{"terms": {"feed_id": list(query.sources)}},
                                            {"terms": {"source": list(query.sources)}}]}})
    if query.since or query.until:
        span: dict[str, str] = {}
        if query.since:
            span["gte"] = query.since.isoformat()
        if query.until:
            span["lte"] = query.until.isoformat()
        filters.append({"range": {"published_at": span}})
    if query.labels:
        filters.append({"terms": {"relevance.label": list(query.labels)}})
    if query.min_score is not None:
        filters.append({"range": {"relevance.score": {"gte": query.min_score}}})
    if query.story_id:
        filters.append({"term": {"story_id": query.story_id}})
    if query.added_since:
        filters.append({"range": {"indexed_at": {"gte": query.added_since.isoformat()}}})
    for field, values in (("relevance.themes", query.themes), ("entities.countries", query.countries),
                          ("entities.organizations", query.organizations),
                          ("entities.infrastructure", query.infrastructure), ("entities.people", query.people)):
        if values:
            filters.append({"terms": {field: list(values)}})
    bool_query: dict[str, Any] = {"filter": filters}
    if text:
        bool_query["must"] = [text]
    if query.sort == "date" or not text:
        sort: list[Any] = [{"published_at": {"order": "desc", "missing": "_last"}}, "_score", {"id": "asc"}]
    else:
        sort = ["_score", {"published_at": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]
    body: dict[str, Any] = {
        "query": {"bool": bool_query}, "size": query.limit, "from_": query.offset, "sort": sort,
        "track_total_hits": True,
        "highlight": {"fields": {"text_*": {}, "title_*": {}}, "pre_tags": [_MARK_START], "post_tags": [_MARK_END],
                      "fragment_size": 240, "number_of_fragments": 1, "no_match_size": 240},
    }
    aggs: dict[str, Any] = {}
    if query.group_stories:
        # one line per story: collapse on story_id; inner_hits count the copies that matched
        body["collapse"] = {"field": "story_id", "inner_hits": {"name": "copies", "size": 0}}
        aggs["stories"] = {"cardinality": {"field": "story_id", "precision_threshold": STORY_COUNT_PRECISION}}
    if query.facets:
        aggs.update({name: {"terms": {"field": field, "size": FACET_SIZE}} for name, field in _FACETS.items()})
    if aggs:
        body["aggs"] = aggs
    return body


def _snippet(highlight: dict[str, list[str]], doc: Document) -> Snippet:
    fragment = next((v[0] for k, v in highlight.items() if k.startswith("text_") and v), None)
    if fragment is None:
        return Snippet((doc.text or doc.summary or doc.title)[:240])
    text, marks, pos, start = [], [], 0, None
    for char in fragment:
        if char == _MARK_START:
            start = pos
        elif char == _MARK_END and start is not None:
            marks.append((start, pos))
            start = None
        else:
            text.append(char)
            pos += 1
    return Snippet("".join(text), tuple(marks))


def parse_response(response: Any, query: SearchQuery) -> SearchResult:
    """A SearchResult from an Elasticsearch search response."""
    hits = []
    for hit in response["hits"]["hits"]:
        doc = from_source(hit["_source"])
        snippet = _snippet(hit.get("highlight", {}), doc)
        copies = 1
        if "inner_hits" in hit:
            copies = hit["inner_hits"]["copies"]["hits"]["total"]["value"]
        hits.append(SearchHit(document=doc, score=round(float(hit.get("_score") or 0.0), 4), snippet=snippet.text,
                              highlights=snippet.highlights, copies=copies))
    aggs = response.get("aggregations", {})
    total = int(aggs["stories"]["value"]) if query.group_stories and "stories" in aggs else \
        response["hits"]["total"]["value"]
    facets = {name: tuple(FacetValue(value=str(b["key"]), count=b["doc_count"]) for b in aggs[name]["buckets"])
              for name in _FACETS if name in aggs}
    # the story count is HyperLogLog: exact-ish below its precision threshold, an estimate above
    return SearchResult(total=total, hits=tuple(hits), facets=facets,
                        total_exact=not (query.group_stories and total > STORY_COUNT_PRECISION))
