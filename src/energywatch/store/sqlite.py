"""The embedded default store: one SQLite file, WAL, FTS5 over stemmed text, facets in SQL."""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from energywatch.analysis import analyze, candidate_languages, stem_tokens, unique
from energywatch.errors import StoreError, StoreUnavailable
from energywatch.models import (
    Alert,
    Document,
    FacetValue,
    FeedItem,
    FeedState,
    SearchHit,
    SearchQuery,
    SearchResult,
    StoreStats,
    TimelinePoint,
    utcnow,
)
from energywatch.snippets import make_snippet
from energywatch.store.query import ParsedQuery, parse_query

SCHEMA_VERSION = 1
_TERM_FIELDS = {
    "theme": lambda d: d.relevance.themes,
    "country": lambda d: d.entities.countries,
    "organization": lambda d: d.entities.organizations,
    "infrastructure": lambda d: d.entities.infrastructure,
    "person": lambda d: d.entities.people,
    "band": lambda d: d.lsh_bands,
}
_FACET_COLUMNS = {"language": "language", "source": "source", "label": "label"}
_FACET_TERMS = {"themes": "theme", "countries": "country", "organizations": "organization",
                "infrastructure": "infrastructure", "people": "person"}
FACET_LIMIT = 25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_state (feed_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_leases (feed_id TEXT PRIMARY KEY, owner TEXT NOT NULL, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    feed_id TEXT NOT NULL,
    source TEXT NOT NULL,
    guid TEXT,
    language TEXT,
    published_at TEXT,
    indexed_at TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT 'none',
    score REAL NOT NULL DEFAULT 0,
    story_id TEXT NOT NULL,
    duplicate_of TEXT,
    content_hash TEXT,
    extraction TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_published ON documents (published_at);
CREATE INDEX IF NOT EXISTS documents_language ON documents (language);
CREATE INDEX IF NOT EXISTS documents_feed ON documents (feed_id);
CREATE INDEX IF NOT EXISTS documents_label ON documents (label, score);
CREATE INDEX IF NOT EXISTS documents_story ON documents (story_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents (content_hash);
CREATE TABLE IF NOT EXISTS doc_terms (
    field TEXT NOT NULL, value TEXT NOT NULL, doc_rowid INTEGER NOT NULL,
    PRIMARY KEY (field, value, doc_rowid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_terms_doc ON doc_terms (doc_rowid);
CREATE TABLE IF NOT EXISTS seen_guids (
    feed_id TEXT NOT NULL, guid TEXT NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (feed_id, guid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, due_at TEXT NOT NULL, next_attempt_at TEXT, sent_at TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (status, due_at);
CREATE INDEX IF NOT EXISTS alerts_sent ON alerts (rule, channel, sent_at);
CREATE VIRTUAL TABLE IF NOT EXISTS doc_fts USING fts5(
    title, body,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"
);
"""


def index_terms(doc: Document) -> tuple[str, str]:
    """The stemmed title and text that go into the full-text index."""
    return " ".join(analyze(doc.title, doc.language)), " ".join(analyze(doc.text, doc.language))


def sqlite_path(url: str) -> Path:
    """The file path inside a sqlite:///relative or sqlite:////absolute URL."""
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a SQLite store URL: {url!r} (expected sqlite:///path/to/file.db)")
    return Path(url[len("sqlite:///"):])


log = logging.getLogger(__name__)


class SQLiteStore:
    """Store on one SQLite file; safe to open from several processes (WAL, busy timeout).

    One connection writes, under a lock; every thread reads through a connection of its own, so a
    reader never sees another thread's uncommitted rows and a slow search holds up no writer. A
    file this process may not write (a read-only mount, another user's file) opens read-only:
    searching works, writing says why it cannot.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # the writer connection's
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # not the writer's: a first read must not wait for a write
        self._db: sqlite3.Connection | None = None
        self._read_uri: str | None = None  # how readers open a read-only store
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._set_up()
        except (sqlite3.OperationalError, OSError) as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            if not self.path.is_file() or not _cannot_write(exc):
                raise (sqlite_error(exc, self.path, "opening it") if isinstance(exc, sqlite3.Error) else
                       StoreError(f"cannot open SQLite store {self.path}: {exc}")) from exc
            self._open_read_only(exc)
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.path, "opening it") from exc

    def _set_up(self) -> None:
        """WAL, the schema and its version; retried while another process sets up the same new file."""
        assert self._db is not None
        deadline = time.monotonic() + 30
        while True:
            try:
                # switching a new file to WAL takes a lock that SQLite's busy timeout does not wait
                # for: two processes creating one store at once got "database is locked" here
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.executescript(_SCHEMA)
                self._check_version(self._db)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _open_read_only(self, why: Exception) -> None:
        errors = []
        # immutable=1 also reads a WAL store whose -shm file cannot be created (a read-only folder)
        for options in ("mode=ro", "mode=ro&immutable=1"):
            self._read_uri = f"{self.path.resolve().as_uri()}?{options}"
            try:
                self._check_version(self._reader)
                log.warning("SQLite store %s is not writable here (%s): opened read-only", self.path, why)
                return
            except sqlite3.Error as exc:
                errors.append(str(exc))
                self._drop_reader()
        raise StoreError(f"SQLite store {self.path} can neither be written ({why}) nor read ({'; '.join(errors)}): "
                         "check the file's and its folder's permissions")

    @property
    def _reader(self) -> sqlite3.Connection:
        """This thread's reading connection."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._read_uri:
                connection = sqlite3.connect(self._read_uri, uri=True, check_same_thread=False, isolation_level=None)
            else:
                connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    def _drop_reader(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._readers_lock:
                self._readers.remove(connection)

    def _check_version(self, connection: sqlite3.Connection) -> None:
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            # OR IGNORE: another process creating the same new store may have written it meanwhile
            connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer energywatch (schema {row[0]} > {SCHEMA_VERSION}): upgrade energywatch"
            )

    def close(self) -> None:
        """Close the connections."""
        with self._readers_lock:
            for connection in self._readers:
                connection.close()
            self._readers.clear()
        with self._lock:
            if self._db is not None:
                self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # feed state ------------------------------------------------------------------------------------
    def get_feed_states(self) -> dict[str, FeedState]:
        """Every remembered feed state, by feed id."""
        rows = self._reader.execute("SELECT data FROM feed_state").fetchall()
        states = [FeedState.model_validate_json(row[0]) for row in rows]
        return {s.feed_id: s for s in states}

    def save_feed_states(self, states: Sequence[FeedState]) -> None:
        """Insert or replace feed states."""
        now = utcnow().isoformat()
        with self._lock, self._tx():
            self._writer.executemany(
                "INSERT INTO feed_state VALUES (?, ?, ?) ON CONFLICT(feed_id) DO UPDATE SET data=excluded.data, "
                "updated_at=excluded.updated_at",
                [(s.feed_id, s.model_dump_json(), now) for s in states],
            )

    def feed_leases(self, feed_ids: Sequence[str]) -> dict[str, tuple[str, datetime]]:
        """The current leases on these feeds: feed id → (owner, until)."""
        found: dict[str, tuple[str, datetime]] = {}
        for chunk in _chunks(list(feed_ids), 500):
            for feed_id, owner, until in self._reader.execute(
                    f"SELECT feed_id, owner, until FROM feed_leases WHERE feed_id IN ({','.join('?' * len(chunk))})",
                    chunk):
                found[feed_id] = (owner, datetime.fromisoformat(until))
        return found

    def claim_feeds(self, feed_ids: Sequence[str], owner: str, until: datetime, now: datetime,
                    take_from: Sequence[str] = ()) -> set[str]:
        """Lease feeds to one run until `until`; the ids this owner holds now (free, expired, its own, or
        held by one of `take_from`: owners known to be dead)."""
        won: set[str] = set()
        dead = list(take_from)
        with self._lock, self._tx():
            for feed_id in feed_ids:
                # the lease is the conditional upsert itself: a live lease of another owner is left alone
                cursor = self._writer.execute(
                    "INSERT INTO feed_leases VALUES (?, ?, ?) ON CONFLICT(feed_id) DO UPDATE SET owner = excluded.owner, "
                    "until = excluded.until WHERE feed_leases.until <= ? OR feed_leases.owner = excluded.owner "
                    f"OR feed_leases.owner IN ({','.join('?' * len(dead)) or 'NULL'})",
                    (feed_id, owner, _iso(until), _iso(now), *dead))
                if cursor.rowcount == 1:
                    won.add(feed_id)
        return won

    def release_feeds(self, feed_ids: Sequence[str], owner: str) -> None:
        """Give back the leases this owner holds on these feeds."""
        with self._lock, self._tx():
            for chunk in _chunks(list(feed_ids), 500):
                marks = ",".join("?" * len(chunk))
                self._writer.execute(f"DELETE FROM feed_leases WHERE owner = ? AND feed_id IN ({marks})", [owner, *chunk])

    # documents -------------------------------------------------------------------------------------
    def unseen(self, items: Sequence[FeedItem]) -> list[FeedItem]:
        """The items whose document is not stored yet (by document id, then by feed GUID)."""
        if not items:
            return []
        known: set[str] = set()
        ids = list({i.doc_id for i in items})
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            known.update(r[0] for r in self._reader.execute(f"SELECT id FROM documents WHERE id IN ({marks})", chunk))
        seen_guids: set[tuple[str, str]] = set()
        pairs = [(i.feed_id, i.guid) for i in items if i.guid]
        for chunk in _chunks(pairs, 400):
            clause = " OR ".join("(feed_id = ? AND guid = ?)" for _ in chunk)
            flat = [v for pair in chunk for v in pair]
            rows = self._reader.execute(f"SELECT feed_id, guid FROM seen_guids WHERE {clause}", flat)
            seen_guids.update((r[0], r[1]) for r in rows)
        return [i for i in items if i.doc_id not in known and (i.feed_id, i.guid) not in seen_guids]

    def put_documents(self, documents: Sequence[Document], alerts: Sequence[Alert] = ()) -> list[str]:
        """Upsert documents, their index entries, seen GUIDs and new outbox entries in one transaction."""
        if not documents and not alerts:
            return []
        now = utcnow()
        prepared = [(d if d.indexed_at else d.model_copy(update={"indexed_at": now})) for d in documents]
        index_rows = [d.index_terms or index_terms(d) for d in prepared]
        with self._lock, self._tx():
            for doc, (title_terms, body_terms) in zip(prepared, index_rows):
                row = self._writer.execute(
                    """INSERT INTO documents (id, feed_id, source, guid, language, published_at, indexed_at, label,
                           score, story_id, duplicate_of, content_hash, extraction, data)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(id) DO UPDATE SET feed_id=excluded.feed_id, source=excluded.source,
                           guid=excluded.guid, language=excluded.language, published_at=excluded.published_at,
                           indexed_at=excluded.indexed_at, label=excluded.label, score=excluded.score,
                           story_id=excluded.story_id, duplicate_of=excluded.duplicate_of,
                           content_hash=excluded.content_hash, extraction=excluded.extraction, data=excluded.data
                       RETURNING rowid""",
                    (doc.id, doc.feed_id, doc.source, doc.guid, doc.language, _iso(doc.published_at),
                     _iso(doc.indexed_at), doc.relevance.label, doc.relevance.score, doc.story_id or doc.id,
                     doc.duplicate_of, doc.content_hash, doc.extraction.value, doc.model_dump_json()),
                ).fetchone()
                rowid = row[0]
                self._writer.execute("DELETE FROM doc_fts WHERE rowid = ?", (rowid,))
                self._writer.execute("INSERT INTO doc_fts (rowid, title, body) VALUES (?, ?, ?)",
                                 (rowid, title_terms, body_terms))
                self._writer.execute("DELETE FROM doc_terms WHERE doc_rowid = ?", (rowid,))
                terms = {(field, value, rowid) for field, get in _TERM_FIELDS.items() for value in get(doc)}
                if terms:
                    self._writer.executemany("INSERT OR IGNORE INTO doc_terms VALUES (?, ?, ?)", sorted(terms))
                if doc.guid:
                    self._writer.execute("INSERT OR REPLACE INTO seen_guids VALUES (?, ?, ?)",
                                         (doc.feed_id, doc.guid, doc.id))
            # OR IGNORE: a story already in the outbox for this rule and channel never alerts again
            self._writer.executemany("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [_alert_row(a) for a in alerts])
        return [d.id for d in prepared]

    # alert outbox ----------------------------------------------------------------------------------
    def due_alerts(self, now: datetime) -> list[Alert]:
        """Pending alerts whose due time and retry time have come."""
        stamp = _iso(now)
        rows = self._reader.execute(
            "SELECT data FROM alerts WHERE status = 'pending' AND due_at <= ? "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY created_at, id", (stamp, stamp),
        ).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def update_alerts(self, alerts: Sequence[Alert]) -> None:
        """Replace outbox entries (status, attempts, due time)."""
        with self._lock, self._tx():
            self._writer.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [_alert_row(a) for a in alerts])

    def claim_alerts(self, alerts: Sequence[Alert], now: datetime, lease: timedelta) -> list[Alert]:
        """Take these due alerts for delivery until now + lease; only those this caller won come back."""
        won: list[Alert] = []
        stamp = _iso(now)
        with self._lock, self._tx():
            for alert in alerts:
                claimed = alert.model_copy(update={"next_attempt_at": now + lease})
                row = _alert_row(claimed)
                # the claim is the conditional update itself: a second deliverer finds nothing left due
                cursor = self._writer.execute(
                    "UPDATE alerts SET next_attempt_at = ?, data = ? WHERE id = ? AND status = 'pending' "
                    "AND (next_attempt_at IS NULL OR next_attempt_at <= ?)", (row[6], row[8], alert.id, stamp))
                if cursor.rowcount == 1:
                    won.append(claimed)
        return won

    def last_sent_at(self, rule: str, channel: str) -> datetime | None:
        """When a rule last sent on a channel."""
        row = self._reader.execute("SELECT MAX(sent_at) FROM alerts WHERE rule = ? AND channel = ? AND status = 'sent'",
                               (rule, channel)).fetchone()
        return _dt(row[0]) if row and row[0] else None

    def alert_history(self, limit: int = 50) -> list[Alert]:
        """Outbox entries, newest first."""
        rows = self._reader.execute("SELECT data FROM alerts ORDER BY created_at DESC, id LIMIT ?", (limit,)).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def get_document(self, doc_id: str) -> Document | None:
        """One document by id."""
        row = self._reader.execute("SELECT data FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return Document.model_validate_json(row[0]) if row else None

    def get_documents(self, doc_ids: Sequence[str]) -> list[Document]:
        """Several documents by id, in the order asked; missing ones are left out."""
        found: dict[str, Document] = {}
        for chunk in _chunks(list(doc_ids), 500):
            marks = ",".join("?" * len(chunk))
            for (data,) in self._reader.execute(f"SELECT data FROM documents WHERE id IN ({marks})", chunk):
                doc = Document.model_validate_json(data)
                found[doc.id] = doc
        return [found[i] for i in doc_ids if i in found]

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every stored document, oldest rowid first, in batches."""
        last = 0
        while True:
            rows = self._reader.execute(
                "SELECT rowid, data FROM documents WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch_size)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, data in rows:
                yield Document.model_validate_json(data)

    def prepare_lookups(self) -> None:
        """Nothing to do: SQLite's reads see every committed write."""

    def find_by_content_hash(self, content_hash: str) -> Document | None:
        """The earliest stored document with exactly this normalised text."""
        row = self._reader.execute(
            "SELECT data FROM documents WHERE content_hash = ? ORDER BY rowid LIMIT 1", (content_hash,)
        ).fetchone()
        return Document.model_validate_json(row[0]) if row else None

    def find_by_bands(self, bands: Sequence[str], limit: int = 50) -> list[Document]:
        """Stored documents sharing at least one LSH band key."""
        if not bands:
            return []
        marks = ",".join("?" * len(bands))
        rows = self._reader.execute(
            f"""SELECT d.data FROM documents d WHERE d.rowid IN (
                   SELECT doc_rowid FROM doc_terms WHERE field = 'band' AND value IN ({marks}))
                ORDER BY d.rowid LIMIT ?""",
            (*bands, limit),
        ).fetchall()
        return [Document.model_validate_json(r[0]) for r in rows]

    # search ----------------------------------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchResult:
        """Full-text search with filters, facets and one line per story."""
        parsed = parse_query(query.text)
        match = fts_expression(parsed, query.languages)
        where, params = _filters(query)
        if match:
            source_sql = ("SELECT d.rowid AS rid, d.story_id AS story, d.published_at AS published, "
                          "bm25(doc_fts, 4.0, 1.0) AS rank FROM doc_fts JOIN documents d ON d.rowid = doc_fts.rowid "
                          "WHERE doc_fts MATCH ?")
            params = [match, *params]
        elif not parsed.empty or parsed.excluded:
            return SearchResult(total=0, hits=(), facets={})
        else:
            source_sql = ("SELECT d.rowid AS rid, d.story_id AS story, d.published_at AS published, "
                          "0.0 AS rank FROM documents d WHERE 1")
        matched_sql = source_sql + "".join(f" AND {w}" for w in where)
        order = "rank, published DESC" if query.sort == "relevance" and match else "published DESC, rank"
        try:
            self._reader.execute("DROP TABLE IF EXISTS temp.matched")
            self._reader.execute(f"CREATE TEMP TABLE matched AS {matched_sql}", params)
            if query.group_stories:
                total = self._reader.execute("SELECT COUNT(DISTINCT story) FROM temp.matched").fetchone()[0]
                rows = self._reader.execute(
                    f"""SELECT rid, rank, copies FROM (
                          SELECT rid, rank, published, COUNT(*) OVER (PARTITION BY story) AS copies,
                                 ROW_NUMBER() OVER (PARTITION BY story ORDER BY rank, published DESC, rid) AS rn
                          FROM temp.matched)
                        WHERE rn = 1 ORDER BY {order} LIMIT ? OFFSET ?""",
                    (query.limit, query.offset),
                ).fetchall()
            else:
                total = self._reader.execute("SELECT COUNT(*) FROM temp.matched").fetchone()[0]
                rows = self._reader.execute(
                    f"SELECT rid, rank, 1 FROM temp.matched ORDER BY {order} LIMIT ? OFFSET ?",
                    (query.limit, query.offset),
                ).fetchall()
            facets = self._facets() if query.facets else {}
            docs = {
                rid: Document.model_validate_json(data)
                for rid, data in self._reader.execute(
                    f"SELECT rowid, data FROM documents WHERE rowid IN ({','.join('?' * len(rows))})",
                    [r[0] for r in rows],
                )
            } if rows else {}
            self._reader.execute("DROP TABLE IF EXISTS temp.matched")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search failed for {query.text!r}: {exc}") from exc
        words = list(parsed.words) + [w for p in parsed.phrases for w in p] + list(parsed.prefixes)
        hits = []
        for rid, rank, copies in rows:
            doc = docs[rid]
            snippet = make_snippet(doc.text or doc.summary or doc.title, words, doc.language)
            hits.append(SearchHit(document=doc, score=round(-float(rank), 4), snippet=snippet.text,
                                  highlights=snippet.highlights, copies=int(copies)))
        return SearchResult(total=int(total), hits=tuple(hits), facets=facets)

    def timeline(self, query: SearchQuery) -> list[TimelinePoint]:
        """Stories per day and label among the documents a query matches."""
        parsed = parse_query(query.text)
        match = fts_expression(parsed, query.languages)
        where, params = _filters(query)
        if match:
            base = "FROM doc_fts JOIN documents d ON d.rowid = doc_fts.rowid WHERE doc_fts MATCH ?"
            params = [match, *params]
        elif not parsed.empty or parsed.excluded:
            return []
        else:
            base = "FROM documents d WHERE 1"
        sql = (f"SELECT substr(d.published_at, 1, 10) AS day, d.label, COUNT(DISTINCT d.story_id) {base}"
               + "".join(f" AND {w}" for w in where) + " AND d.published_at IS NOT NULL GROUP BY day, d.label ORDER BY day")
        try:
            rows = self._reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"timeline failed for {query.text!r}: {exc}") from exc
        return [TimelinePoint(day=day, label=label, stories=n) for day, label, n in rows]

    def _facets(self) -> dict[str, tuple[FacetValue, ...]]:
        facets: dict[str, tuple[FacetValue, ...]] = {}
        for name, column in _FACET_COLUMNS.items():
            rows = self._reader.execute(
                f"""SELECT d.{column}, COUNT(*) FROM temp.matched m JOIN documents d ON d.rowid = m.rid
                    WHERE d.{column} IS NOT NULL GROUP BY d.{column} ORDER BY COUNT(*) DESC, d.{column} LIMIT ?""",
                (FACET_LIMIT,),
            ).fetchall()
            facets[name] = tuple(FacetValue(value=str(v), count=c) for v, c in rows)
        for name, field in _FACET_TERMS.items():
            # CROSS JOIN fixes the loop order: the matches outside, each one's terms looked up by the
            # (doc_rowid, field) index inside. Left to itself the planner walked every term of the field
            # in the archive and scanned the unindexed temp table for each: quadratic (0.9 s at 5,000
            # documents for countries, 6 ms this way)
            rows = self._reader.execute(
                """SELECT t.value, COUNT(*) FROM temp.matched m CROSS JOIN doc_terms t
                   ON t.doc_rowid = m.rid AND t.field = ? GROUP BY t.value ORDER BY COUNT(*) DESC, t.value LIMIT ?""",
                (field, FACET_LIMIT),
            ).fetchall()
            facets[name] = tuple(FacetValue(value=v, count=c) for v, c in rows)
        return facets

    def stats(self) -> StoreStats:
        """Counts for `energywatch stats` and the UI."""
        db = self._reader
        documents, stories = db.execute("SELECT COUNT(*), COUNT(DISTINCT story_id) FROM documents").fetchone()
        oldest, newest, last = db.execute(
            "SELECT MIN(published_at), MAX(published_at), MAX(indexed_at) FROM documents"
        ).fetchone()
        states = list(self.get_feed_states().values())

        def counts(column: str) -> dict[str, int]:
            return {str(k): v for k, v in db.execute(
                f"SELECT COALESCE({column}, 'unknown'), COUNT(*) FROM documents GROUP BY 1 ORDER BY 2 DESC")}

        return StoreStats(
            documents=documents, stories=stories, feeds=len(states),
            feeds_failing=sum(1 for s in states if s.consecutive_failures and not s.disabled),
            feeds_disabled=sum(1 for s in states if s.disabled),
            by_language=counts("language"), by_label=counts("label"), by_extraction=counts("extraction"),
            oldest_published=_dt(oldest), newest_published=_dt(newest), last_indexed=_dt(last),
        )

    @property
    def _writer(self) -> sqlite3.Connection:
        """The writing connection (use it under self._lock, inside self._tx())."""
        if self._db is None:
            raise StoreError(f"SQLite store {self.path} was opened read-only (this process may not write the file "
                             "or its folder): searching works, storing needs write access")
        return self._db

    def _tx(self) -> _Transaction:
        return _Transaction(self._writer)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error: a batch is stored whole or not at all."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


def _fts_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_expression(parsed: ParsedQuery, languages: Sequence[str] = ()) -> str | None:
    """An FTS5 MATCH expression: the query stemmed in each candidate language, OR-ed together."""
    if parsed.empty:
        return None
    all_words = " ".join([*parsed.words, *[w for p in parsed.phrases for w in p], *parsed.prefixes])
    langs: list[str | None] = list(languages) or list(candidate_languages(all_words)) or [None]
    variants: list[str] = []
    negatives: list[str] = []
    for lang in langs:
        parts = [_fts_string(s) for s in unique(stem_tokens(list(parsed.words), lang))]
        parts += [_fts_string(" ".join(stem_tokens(list(p), lang))) for p in parsed.phrases]
        parts += [_fts_string(p) + " *" for p in parsed.prefixes]
        variants.append("(" + " AND ".join(parts) + ")")
        negatives += [_fts_string(s) for s in stem_tokens(list(parsed.excluded), lang)]
    expression = " OR ".join(unique(variants))
    if negatives:
        # excluded words leave out a document in whichever language they stem to
        expression = f"({expression}) NOT ({' OR '.join(unique(negatives))})"
    return expression


def _filters(query: SearchQuery) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []

    def any_of(column: str, values: Sequence[str]) -> None:
        where.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)

    if query.languages:
        any_of("d.language", query.languages)
    if query.sources:
        marks = ",".join("?" * len(query.sources))
        where.append(f"(d.feed_id IN ({marks}) OR d.source IN ({marks}))")
        params.extend([*query.sources, *query.sources])
    if query.since:
        where.append("d.published_at >= ?")
        params.append(_iso(query.since))
    if query.until:
        where.append("d.published_at <= ?")
        params.append(_iso(query.until))
    if query.labels:
        any_of("d.label", query.labels)
    if query.min_score is not None:
        where.append("d.score >= ?")
        params.append(query.min_score)
    if query.story_id:
        where.append("d.story_id = ?")
        params.append(query.story_id)
    for field, values in (("theme", query.themes), ("country", query.countries),
                          ("organization", query.organizations), ("infrastructure", query.infrastructure),
                          ("person", query.people)):
        if values:
            where.append(
                f"d.rowid IN (SELECT doc_rowid FROM doc_terms WHERE field = ? AND value IN ({','.join('?' * len(values))}))"
            )
            params.extend([field, *values])
    return where, params


def _cannot_write(exc: BaseException) -> bool:
    """Whether opening for writing failed for want of permission (a read-only file, folder or mount)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open database file" in text


def sqlite_error(exc: sqlite3.Error, path: Path, action: str) -> StoreError:
    """What a SQLite error means for the user, and what to do about it."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreUnavailable(f"SQLite store {path} stayed locked by another process while {action} ({exc}): "
                                "retry later, or stop the process that holds it")
    if "disk is full" in text or "disk i/o" in text:
        return StoreError(f"SQLite store {path}: {exc} while {action}; nothing of this step was written. "
                          "Free disk space and run again")
    if "readonly" in text or "read-only" in text:
        return StoreError(f"SQLite store {path} is read-only ({exc}) and cannot be written while {action}: "
                          "check the file's and its folder's permissions")
    if "malformed" in text or "not a database" in text or isinstance(exc, sqlite3.DatabaseError) and \
            not isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"SQLite store {path} is damaged ({exc}) while {action}: check it with "
                          f"`sqlite3 {path} 'PRAGMA integrity_check'` and restore your latest backup")
    return StoreError(f"SQLite store {path}: {action} failed: {exc}")


def _guarded(method: Any) -> Any:
    """Wrap a store method so that SQLite's exceptions leave it as StoreErrors that say what to do."""
    action = method.__name__.replace("_", " ")
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise sqlite_error(exc, self.path, action) from exc
        return generator

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.path, action) from exc
    return wrapper


for _name in ("get_feed_states", "save_feed_states", "feed_leases", "claim_feeds", "release_feeds", "unseen",
              "put_documents", "due_alerts", "update_alerts",
              "claim_alerts", "last_sent_at", "alert_history", "get_document", "get_documents", "iter_documents",
              "prepare_lookups", "find_by_content_hash", "find_by_bands", "search", "timeline", "stats"):
    setattr(SQLiteStore, _name, _guarded(getattr(SQLiteStore, _name)))


def _alert_row(a: Alert) -> tuple[object, ...]:
    return (a.id, a.rule, a.channel, a.status, _iso(a.created_at), _iso(a.due_at), _iso(a.next_attempt_at),
            _iso(a.sent_at), a.model_dump_json())


def _iso(value: datetime | None) -> str | None:
    # one offset for every stored time, so that string comparison orders them correctly
    return value.astimezone(timezone.utc).isoformat(timespec="seconds") if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _chunks(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]
