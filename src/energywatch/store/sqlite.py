"""The embedded default store: one SQLite file, WAL, FTS5 over stemmed text, facets in SQL."""

from __future__ import annotations

import errno
import functools
import hashlib
import inspect
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
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
    SavedSearch,
    SearchHit,
    SearchQuery,
    SearchResult,
    StoreStats,
    TimelinePoint,
    utcnow,
)
from energywatch.snippets import make_snippet
from energywatch.store.query import AnyOf, Node, Not, ParsedQuery, Term, prefix_forms, searchable

SCHEMA_VERSION = 2
_TERM_FIELDS = {
    "theme": lambda d: d.relevance.themes,
    "country": lambda d: d.entities.countries,
    "organization": lambda d: d.entities.organizations,
    "infrastructure": lambda d: d.entities.infrastructure,
    "person": lambda d: d.entities.people,
}
_FACET_COLUMNS = {"language": "language", "source": "source", "label": "label"}
_FACET_TERMS = {"themes": "theme", "countries": "country", "organizations": "organization",
                "infrastructure": "infrastructure", "people": "person"}
FACET_LIMIT = 25
# A search ranks, groups, counts and facets at most this many matching documents: the newest (by
# arrival for a text query, by date for the empty query). Past it the total is a lower bound, as
# Elasticsearch's own default (track_total_hits 10,000), and the UI says so. Without the bound a
# word that occurs in a third of a million-document archive costs seconds per search.
MATCH_WINDOW = 10_000
# Facets are counted over at most this many of those matches (the newest); past it they are a
# sample, scaled to the whole window, and the UI says so.
FACET_SAMPLE = 2_000
# The timeline of a query that matches more documents than this is drawn from a regular sample of
# them (every k-th by rowid), its counts scaled: the shape of a year, at the cost of this many rows.
TIMELINE_SAMPLE = 20_000
# LSH band keys are kept by arrival bucket (rowid >> BUCKET_BITS) ahead of the key: a batch's 2,000
# random band keys then land in the newest bucket's few hundred pages instead of all over a tree that
# grows with the archive (at 100,000 documents that halved write throughput), and a story lookup
# searches the newest STORY_WINDOW documents, at the same cost in any archive. Exact reposts are
# found by content hash in the whole archive.
BUCKET_BITS = 12
STORY_WINDOW = 16 << BUCKET_BITS  # 65,536 documents: three weeks of 200 busy feeds
_COUNTED = ("language", "label", "extraction")

_TABLES = """
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
    extraction TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_published ON documents (published_at);
CREATE INDEX IF NOT EXISTS documents_language ON documents (language);
CREATE INDEX IF NOT EXISTS documents_feed ON documents (feed_id);
CREATE INDEX IF NOT EXISTS documents_label ON documents (label, score);
CREATE INDEX IF NOT EXISTS documents_story ON documents (story_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents (content_hash);
CREATE INDEX IF NOT EXISTS documents_indexed ON documents (indexed_at);
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
CREATE TABLE IF NOT EXISTS saved_searches (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_sent ON alerts (rule, channel, sent_at);
"""

# Schema 2 (a year of news on one file): the document JSON and its stemmed index text are stored
# zlib-compressed, the full-text index keeps no second copy of the text (contentless: the stored
# index text is what deletes it), LSH bands are 64-bit integers in a table of their own, and
# triggers keep the counts that `stats` shows, instead of counting a million rows per call.
_V2 = """
CREATE VIRTUAL TABLE IF NOT EXISTS doc_fts USING fts5(
    title, body, content = '',
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"
);
CREATE TABLE IF NOT EXISTS doc_content (rowid INTEGER PRIMARY KEY, data BLOB NOT NULL, terms BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS doc_bands (
    bucket INTEGER NOT NULL, band INTEGER NOT NULL, doc_rowid INTEGER NOT NULL, PRIMARY KEY (bucket, band, doc_rowid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS doc_counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO doc_counts VALUES ('documents', 0), ('stories', 0);
CREATE TRIGGER IF NOT EXISTS documents_counted AFTER INSERT ON documents BEGIN
    UPDATE doc_counts SET n = n + 1 WHERE key = 'stories'
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = new.story_id AND rowid <> new.rowid);
    INSERT INTO doc_counts VALUES ('documents', 1), ('language:' || COALESCE(new.language, 'unknown'), 1),
        ('label:' || new.label, 1), ('extraction:' || new.extraction, 1)
        ON CONFLICT (key) DO UPDATE SET n = n + 1;
    INSERT INTO meta VALUES ('last_indexed', new.indexed_at)
        ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value);
END;
CREATE TRIGGER IF NOT EXISTS documents_uncounted AFTER DELETE ON documents BEGIN
    UPDATE doc_counts SET n = n - 1 WHERE key = 'stories'
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = old.story_id);
    UPDATE doc_counts SET n = n - 1 WHERE key IN ('documents', 'language:' || COALESCE(old.language, 'unknown'),
        'label:' || old.label, 'extraction:' || old.extraction);
END;
CREATE TRIGGER IF NOT EXISTS documents_recounted AFTER UPDATE ON documents BEGIN
    UPDATE doc_counts SET n = n - 1 WHERE key IN ('language:' || COALESCE(old.language, 'unknown'),
        'label:' || old.label, 'extraction:' || old.extraction);
    INSERT INTO doc_counts VALUES ('language:' || COALESCE(new.language, 'unknown'), 1),
        ('label:' || new.label, 1), ('extraction:' || new.extraction, 1)
        ON CONFLICT (key) DO UPDATE SET n = n + 1;
    INSERT INTO meta VALUES ('last_indexed', new.indexed_at)
        ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value);
END;
CREATE TABLE IF NOT EXISTS doc_days (
    day TEXT NOT NULL, label TEXT NOT NULL, stories INTEGER NOT NULL, PRIMARY KEY (day, label)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS documents_dayed AFTER INSERT ON documents WHEN new.published_at IS NOT NULL BEGIN
    INSERT INTO doc_days VALUES (substr(new.published_at, 1, 10), new.label, 1)
        ON CONFLICT (day, label) DO UPDATE SET stories = stories + 1 WHERE NOT EXISTS (
            SELECT 1 FROM documents WHERE story_id = new.story_id AND rowid <> new.rowid AND label = new.label
            AND substr(published_at, 1, 10) = substr(new.published_at, 1, 10));
END;
CREATE TRIGGER IF NOT EXISTS documents_undayed AFTER DELETE ON documents WHEN old.published_at IS NOT NULL BEGIN
    UPDATE doc_days SET stories = stories - 1 WHERE day = substr(old.published_at, 1, 10) AND label = old.label
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = old.story_id AND label = old.label
                        AND substr(published_at, 1, 10) = substr(old.published_at, 1, 10));
END;
CREATE TRIGGER IF NOT EXISTS documents_redayed AFTER UPDATE OF published_at, label, story_id ON documents
        WHEN old.published_at IS NOT new.published_at OR old.label IS NOT new.label
        OR old.story_id IS NOT new.story_id BEGIN
    UPDATE doc_days SET stories = stories - 1 WHERE old.published_at IS NOT NULL
        AND day = substr(old.published_at, 1, 10) AND label = old.label
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = old.story_id AND label = old.label
                        AND substr(published_at, 1, 10) = substr(old.published_at, 1, 10));
    INSERT INTO doc_days SELECT substr(new.published_at, 1, 10), new.label, 1 WHERE new.published_at IS NOT NULL
        ON CONFLICT (day, label) DO UPDATE SET stories = stories + 1 WHERE NOT EXISTS (
            SELECT 1 FROM documents WHERE story_id = new.story_id AND rowid <> new.rowid AND label = new.label
            AND substr(published_at, 1, 10) = substr(new.published_at, 1, 10));
END;
CREATE TRIGGER IF NOT EXISTS documents_restoried AFTER UPDATE OF story_id ON documents
        WHEN old.story_id IS NOT new.story_id BEGIN
    UPDATE doc_counts SET n = n - 1 WHERE key = 'stories'
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = old.story_id);
    UPDATE doc_counts SET n = n + 1 WHERE key = 'stories'
        AND NOT EXISTS (SELECT 1 FROM documents WHERE story_id = new.story_id AND rowid <> new.rowid);
END;
"""


def _pack(text: str) -> bytes:
    # level 6: within 3% of level 9's size at a third of its time (measured on the corpus)
    return zlib.compress(text.encode("utf-8"), 6)


def _unpack(value: bytes | str) -> str:
    """A stored JSON or index text: compressed (schema 2) or plain (written before)."""
    return zlib.decompress(value).decode("utf-8") if isinstance(value, bytes) else value


def _pack_terms(terms: str, json_text: str) -> bytes:
    """The stemmed index text, compressed against its document's JSON as a preset dictionary: a third
    smaller, the stems being mostly prefixes of the document's words."""
    packer = zlib.compressobj(6, zdict=json_text.encode("utf-8")[-32768:])
    return packer.compress(terms.encode("utf-8")) + packer.flush()


def _unpack_terms(terms: bytes, json_text: str) -> tuple[str, str]:
    """What _pack_terms packed, given the same JSON: (title terms, body terms)."""
    unpacker = zlib.decompressobj(zdict=json_text.encode("utf-8")[-32768:])
    title, _, body = (unpacker.decompress(terms) + unpacker.flush()).decode("utf-8").partition("\0")
    return title, body


def _descending(text: str) -> tuple[int, ...]:
    """A sort key that orders strings (ISO dates) newest first."""
    return tuple(-ord(c) for c in text)


def _document(value: bytes | str) -> Document:
    return Document.model_validate_json(_unpack(value))


def band_key(band: str) -> int:
    """An LSH band key ("7:9f3a…") as a signed 64-bit integer: 8 bytes in a WITHOUT ROWID table instead of ~30."""
    return int.from_bytes(hashlib.blake2b(band.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


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
                # the writer walks the indexes of a large archive on every batch: 64 MiB of page
                # cache instead of SQLite's 2 MiB keeps write throughput flat as the file grows
                self._db.execute("PRAGMA cache_size=-65536")
                # a checkpoint every 32 MiB of WAL instead of 4: pages written again and again (the
                # full-text index's newest segments, the counts) are copied into the file once
                self._db.execute("PRAGMA wal_autocheckpoint=8192")
                self._db.executescript(_TABLES)
                if self._check_version(self._db) == 1:
                    self._upgrade_from_1()
                self._db.executescript(_V2)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _upgrade_from_1(self) -> None:
        """Schema 1 → 2 in one transaction: a failure leaves the store as it was."""
        assert self._db is not None
        count = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        log.warning("upgrading SQLite store %s (%s documents) to schema 2; this takes about a minute "
                    "per 100,000 documents, once", self.path, f"{count:,}")
        self._db.create_function("ew_pack", 1, _pack, deterministic=True)
        self._db.create_function("ew_band", 1, band_key, deterministic=True)
        self._db.create_function("ew_pack_terms", 2, _pack_terms, deterministic=True)
        self._db.create_function("ew_part", 3, lambda terms, data, n: _unpack_terms(terms, _unpack(data))[n],
                                 deterministic=True)
        counted = " UNION ALL ".join(
            f"SELECT '{c}:' || COALESCE({c}, 'unknown'), COUNT(*) FROM documents GROUP BY 1" for c in _COUNTED)
        script = f"""
            BEGIN IMMEDIATE;
            CREATE TABLE doc_content (rowid INTEGER PRIMARY KEY, data BLOB NOT NULL, terms BLOB NOT NULL);
            INSERT INTO doc_content SELECT d.rowid, ew_pack(d.data), ew_pack_terms(f.title || char(0) || f.body, d.data)
                FROM documents d JOIN doc_fts f ON f.rowid = d.rowid;
            ALTER TABLE documents DROP COLUMN data;
            CREATE TABLE doc_bands (bucket INTEGER NOT NULL, band INTEGER NOT NULL, doc_rowid INTEGER NOT NULL,
                                    PRIMARY KEY (bucket, band, doc_rowid)) WITHOUT ROWID;
            INSERT OR IGNORE INTO doc_bands SELECT doc_rowid >> {BUCKET_BITS}, ew_band(value), doc_rowid
                FROM doc_terms WHERE field = 'band';
            DELETE FROM doc_terms WHERE field = 'band';
            DROP TABLE doc_fts;
            CREATE TABLE doc_counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO doc_counts SELECT 'documents', COUNT(*) FROM documents;
            INSERT INTO doc_counts SELECT 'stories', COUNT(DISTINCT story_id) FROM documents;
            INSERT INTO doc_counts {counted};
            CREATE TABLE doc_days (
                day TEXT NOT NULL, label TEXT NOT NULL, stories INTEGER NOT NULL, PRIMARY KEY (day, label)
            ) WITHOUT ROWID;
            INSERT INTO doc_days SELECT substr(published_at, 1, 10), label, COUNT(DISTINCT story_id) FROM documents
                WHERE published_at IS NOT NULL GROUP BY 1, 2;
            INSERT OR REPLACE INTO meta SELECT 'last_indexed', MAX(indexed_at) FROM documents
                WHERE EXISTS (SELECT 1 FROM documents);
            {_V2}
            INSERT INTO doc_fts (rowid, title, body) SELECT rowid, ew_part(terms, data, 0), ew_part(terms, data, 1)
                FROM doc_content;
            UPDATE meta SET value = '2' WHERE key = 'schema_version';
            COMMIT;
        """
        try:
            self._db.executescript(script)
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        log.warning("SQLite store %s is on schema 2; `VACUUM` (or `energywatch backup`) gives back the space "
                    "the old layout took", self.path)

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
            connection.execute("PRAGMA cache_size=-32768")  # 32 MiB: the indexes' upper levels stay in memory
            connection.execute("PRAGMA temp_store=MEMORY")  # a search's window of matches, not a temp file
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

    def _check_version(self, connection: sqlite3.Connection) -> int:
        """The store's schema version (a new store is marked with this code's)."""
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            # OR IGNORE: another process creating the same new store may have written it meanwhile
            connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return SCHEMA_VERSION
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer energywatch (schema {version} > {SCHEMA_VERSION}): upgrade energywatch"
            )
        if version < SCHEMA_VERSION and connection is not self._db:
            raise StoreError(f"{self.path} was written by an older energywatch (schema {version}): open it once with "
                             "write access (any energywatch command) to upgrade it, then read it from here")
        return version

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
                self._store(doc, title_terms, body_terms)
            # OR IGNORE: a story already in the outbox for this rule and channel never alerts again
            self._writer.executemany("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [_alert_row(a) for a in alerts])
        return [d.id for d in prepared]

    def _store(self, doc: Document, title_terms: str, body_terms: str) -> None:
        """Upsert one document with its index entries (under the writer's lock, in a transaction)."""
        self._unindex(doc.id)
        json_text = doc.model_dump_json()
        data = _pack(json_text)
        row = self._writer.execute(
            """INSERT INTO documents (id, feed_id, source, guid, language, published_at, indexed_at, label,
                   score, story_id, duplicate_of, content_hash, extraction)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET feed_id=excluded.feed_id, source=excluded.source,
                   guid=excluded.guid, language=excluded.language, published_at=excluded.published_at,
                   indexed_at=excluded.indexed_at, label=excluded.label, score=excluded.score,
                   story_id=excluded.story_id, duplicate_of=excluded.duplicate_of,
                   content_hash=excluded.content_hash, extraction=excluded.extraction
               RETURNING rowid""",
            (doc.id, doc.feed_id, doc.source, doc.guid, doc.language, _iso(doc.published_at),
             _iso(doc.indexed_at), doc.relevance.label, doc.relevance.score, doc.story_id or doc.id,
             doc.duplicate_of, doc.content_hash, doc.extraction.value),
        ).fetchone()
        rowid = row[0]
        self._writer.execute("INSERT OR REPLACE INTO doc_content VALUES (?, ?, ?)",
                             (rowid, data, _pack_terms(f"{title_terms}\0{body_terms}", json_text)))
        self._writer.execute("INSERT INTO doc_fts (rowid, title, body) VALUES (?, ?, ?)", (rowid, title_terms, body_terms))
        terms = {(field, value, rowid) for field, get in _TERM_FIELDS.items() for value in get(doc)}
        if terms:
            self._writer.executemany("INSERT OR IGNORE INTO doc_terms VALUES (?, ?, ?)", sorted(terms))
        if doc.lsh_bands:
            self._writer.executemany("INSERT OR IGNORE INTO doc_bands VALUES (?, ?, ?)",
                                     sorted((rowid >> BUCKET_BITS, band_key(b), rowid) for b in doc.lsh_bands))
        if doc.guid:
            self._writer.execute("INSERT OR REPLACE INTO seen_guids VALUES (?, ?, ?)", (doc.feed_id, doc.guid, doc.id))

    def _unindex(self, doc_id: str) -> None:
        """Take a stored document, if any, out of the full-text, term and band indexes."""
        row = self._writer.execute("SELECT d.rowid, c.data, c.terms FROM documents d JOIN doc_content c "
                                   "ON c.rowid = d.rowid WHERE d.id = ?", (doc_id,)).fetchone()
        if row is None:
            return
        rowid, data, terms = row
        json_text = _unpack(data)
        title_terms, body_terms = _unpack_terms(terms, json_text)
        # a contentless index forgets a row by being told the exact text it indexed
        self._writer.execute("INSERT INTO doc_fts (doc_fts, rowid, title, body) VALUES ('delete', ?, ?, ?)",
                             (rowid, title_terms, body_terms))
        self._writer.execute("DELETE FROM doc_terms WHERE doc_rowid = ?", (rowid,))
        bands = Document.model_validate_json(json_text).lsh_bands
        self._writer.executemany("DELETE FROM doc_bands WHERE bucket = ? AND band = ? AND doc_rowid = ?",
                                 [(rowid >> BUCKET_BITS, band_key(b), rowid) for b in bands])

    def backup(self, target: Path | str) -> int:
        """Copy the store, consistent as of one moment, while others go on writing; the copy's size in bytes.

        SQLite's online backup API in one step: the copy reads one snapshot of the file (WAL lets the
        writers carry on meanwhile), where a copy in many steps would restart at every write."""
        target = Path(target)
        if target.exists():
            raise StoreError(f"{target} exists: a backup never overwrites a file; name a new one")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            self._reader.backup(copy)
            problem = copy.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise StoreError(f"the backup of {self.path} failed its check ({problem}); the store itself is untouched")
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, whatever the store's mode
        except BaseException:
            copy.close()
            partial.unlink(missing_ok=True)
            raise
        copy.close()
        partial.rename(target)
        return target.stat().st_size

    def prune(self, before: datetime, batch_size: int = 500,
              progress: Callable[[int], None] | None = None) -> int:
        """Delete the documents published (undated: stored) before a time; how many went.

        In batches of one transaction each, so an interrupted prune leaves a consistent store and can
        be run again. Pending alerts for deleted documents go with them; sent ones stay (the outbox
        remembers that their story alerted). Copies that named a deleted document as their original
        keep their story but no longer point at it. Seen GUIDs stay, so feeds that still list an old
        item do not bring it back."""
        cutoff = _iso(before)
        removed = 0
        while True:
            with self._lock, self._tx():
                ids = [r[0] for r in self._writer.execute(
                    """SELECT id FROM documents WHERE published_at < ?1
                       UNION ALL SELECT id FROM documents WHERE published_at IS NULL AND indexed_at < ?1
                       LIMIT ?2""", (cutoff, batch_size))]
                if not ids:
                    return removed
                for doc_id in ids:
                    self._unindex(doc_id)
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    self._writer.execute(f"DELETE FROM doc_content WHERE rowid IN (SELECT rowid FROM documents "
                                         f"WHERE id IN ({marks}))", chunk)
                    self._writer.execute(f"DELETE FROM documents WHERE id IN ({marks})", chunk)
                    self._writer.execute(f"DELETE FROM alerts WHERE status = 'pending' AND "
                                         f"json_extract(data, '$.doc_id') IN ({marks})", chunk)
                    copies = self._writer.execute(
                        f"SELECT c.data, c.terms FROM documents d JOIN doc_content c ON c.rowid = d.rowid "
                        f"WHERE d.duplicate_of IN ({marks})", chunk).fetchall()
                    for data, terms in copies:
                        json_text = _unpack(data)
                        copy = Document.model_validate_json(json_text).model_copy(update={"duplicate_of": None})
                        self._store(copy, *_unpack_terms(terms, json_text))
                removed += len(ids)
            if progress:
                progress(removed)

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

    def alert_history(self, limit: int = 50, offset: int = 0, *, rule: str | None = None,
                      status: str | None = None, channel: str | None = None) -> list[Alert]:
        """Outbox entries, newest first, optionally of one rule, status or channel."""
        where = [f"{column} = ?" for column, value in (("rule", rule), ("status", status), ("channel", channel))
                 if value is not None]
        params = [v for v in (rule, status, channel) if v is not None]
        rows = self._reader.execute(
            f"SELECT data FROM alerts {'WHERE ' + ' AND '.join(where) if where else ''} "
            "ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [Alert.model_validate_json(r[0]) for r in rows]

    def documents_per_feed(self) -> dict[str, int]:
        """How many documents each feed has stored, by feed id."""
        return dict(self._reader.execute("SELECT feed_id, COUNT(*) FROM documents GROUP BY feed_id").fetchall())

    def save_search(self, saved: SavedSearch) -> None:
        """Keep a search under its name (replacing one of the same name)."""
        with self._lock, self._tx():
            self._writer.execute("INSERT OR REPLACE INTO saved_searches VALUES (?, ?)",
                                 (saved.name, saved.model_dump_json()))

    def saved_searches(self) -> list[SavedSearch]:
        """Every saved search, by name."""
        return [SavedSearch.model_validate_json(r[0])
                for r in self._reader.execute("SELECT data FROM saved_searches ORDER BY name")]

    def delete_search(self, name: str) -> bool:
        """Forget a saved search; False when there was none of that name."""
        with self._lock, self._tx():
            return self._writer.execute("DELETE FROM saved_searches WHERE name = ?", (name,)).rowcount > 0

    def get_document(self, doc_id: str) -> Document | None:
        """One document by id."""
        row = self._reader.execute("SELECT c.data FROM documents d JOIN doc_content c ON c.rowid = d.rowid "
                                   "WHERE d.id = ?", (doc_id,)).fetchone()
        return _document(row[0]) if row else None

    def get_documents(self, doc_ids: Sequence[str]) -> list[Document]:
        """Several documents by id, in the order asked; missing ones are left out."""
        found: dict[str, Document] = {}
        for chunk in _chunks(list(doc_ids), 500):
            marks = ",".join("?" * len(chunk))
            for (data,) in self._reader.execute(f"SELECT c.data FROM documents d JOIN doc_content c "
                                                f"ON c.rowid = d.rowid WHERE d.id IN ({marks})", chunk):
                doc = _document(data)
                found[doc.id] = doc
        return [found[i] for i in doc_ids if i in found]

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]:
        """Every stored document, oldest rowid first, in batches."""
        last = 0
        while True:
            rows = self._reader.execute(
                "SELECT rowid, data FROM doc_content WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch_size)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for _, data in rows:
                yield _document(data)

    def prepare_lookups(self) -> None:
        """Nothing to do: SQLite's reads see every committed write."""

    def find_by_content_hash(self, content_hash: str) -> Document | None:
        """The earliest stored document with exactly this normalised text."""
        row = self._reader.execute(
            "SELECT c.data FROM documents d JOIN doc_content c ON c.rowid = d.rowid WHERE d.content_hash = ? "
            "ORDER BY d.rowid LIMIT 1", (content_hash,)
        ).fetchone()
        return _document(row[0]) if row else None

    def find_by_bands(self, bands: Sequence[str], limit: int = 10) -> list[Document]:
        """Documents among the newest STORY_WINDOW sharing an LSH band key: most keys shared first, then newest."""
        if not bands:
            return []
        keys = sorted({band_key(b) for b in bands})
        newest = self._reader.execute("SELECT MAX(rowid) FROM documents").fetchone()[0] or 0
        buckets = list(range(newest >> BUCKET_BITS, max(-1, (newest - STORY_WINDOW) >> BUCKET_BITS), -1))
        rows = self._reader.execute(
            f"""SELECT d.data FROM (
                    SELECT doc_rowid, COUNT(*) AS shared FROM doc_bands
                    WHERE bucket IN ({','.join('?' * len(buckets))}) AND band IN ({','.join('?' * len(keys))})
                    AND doc_rowid > ? GROUP BY doc_rowid ORDER BY shared DESC, doc_rowid DESC LIMIT ?) c
                CROSS JOIN doc_content d ON d.rowid = c.doc_rowid ORDER BY c.shared DESC, c.doc_rowid DESC""",
            (*buckets, *keys, newest - STORY_WINDOW, limit),
        ).fetchall()
        return [_document(r[0]) for r in rows]

    def search(self, query: SearchQuery) -> SearchResult:
        """Full-text search with filters, facets and one line per story (over the newest MATCH_WINDOW matches)."""
        parsed = searchable(query.text)
        match = fts_expression(parsed, query.languages)
        where, params = _filters(query)
        if parsed.exclusions_only:
            # only exclusions (-gas): every document but those
            where.append("d.rowid NOT IN (SELECT rowid FROM doc_fts WHERE doc_fts MATCH ?)")
            params.append(fts_negatives(parsed, query.languages))
        columns = ("d.rowid AS rid, d.story_id AS story, d.published_at AS published, d.language AS language, "
                   "d.source AS source, d.label AS label")
        if match:
            # newest by arrival: FTS5 walks its doclists by rowid, so the window costs its own size only
            matched_sql = (f"SELECT {columns}, bm25(doc_fts, 4.0, 1.0) AS rank FROM doc_fts "
                           "JOIN documents d ON d.rowid = doc_fts.rowid WHERE doc_fts MATCH ?"
                           + "".join(f" AND {w}" for w in where) + " ORDER BY doc_fts.rowid DESC LIMIT ?")
            params = [match, *params]
        else:
            by_date = " INDEXED BY documents_published" if self._common(query) else ""
            matched_sql = (f"SELECT {columns}, 0.0 AS rank FROM documents d{by_date} WHERE 1"
                           + "".join(f" AND {w}" for w in where) + " ORDER BY d.published_at DESC LIMIT ?")
        order = "rank, published DESC" if query.sort == "relevance" and match else "published DESC, rank"
        try:
            self._reader.execute("DROP TABLE IF EXISTS temp.matched")
            self._reader.execute(f"CREATE TEMP TABLE matched AS {matched_sql}", [*params, MATCH_WINDOW])
            matched = self._reader.execute("SELECT COUNT(*) FROM temp.matched").fetchone()[0]
            if query.group_stories:
                total = self._reader.execute("SELECT COUNT(*) FROM (SELECT 1 FROM temp.matched GROUP BY story)"
                                             ).fetchone()[0]
                rows = self._page_of_stories(order, query.limit, query.offset)
            else:
                total = matched
                rows = self._reader.execute(
                    f"SELECT rid, rank, 1 FROM temp.matched ORDER BY {order} LIMIT ? OFFSET ?",
                    (query.limit, query.offset),
                ).fetchall()
            facets = self._facets(matched) if query.facets else {}
            docs = {
                rid: _document(data)
                for rid, data in self._reader.execute(
                    f"SELECT rowid, data FROM doc_content WHERE rowid IN ({','.join('?' * len(rows))})",
                    [r[0] for r in rows],
                )
            } if rows else {}
            self._reader.execute("DROP TABLE IF EXISTS temp.matched")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"search failed for {query.text!r}: {exc}") from exc
        words = parsed.words()
        hits = []
        for rid, rank, copies in rows:
            doc = docs[rid]
            snippet = make_snippet(doc.text or doc.summary or doc.title, words, doc.language)
            hits.append(SearchHit(document=doc, score=round(-float(rank), 4), snippet=snippet.text,
                                  highlights=snippet.highlights, copies=int(copies)))
        return SearchResult(total=int(total), hits=tuple(hits), facets=facets, total_exact=matched < MATCH_WINDOW,
                            facets_sample=matched if query.facets and matched > FACET_SAMPLE else None)

    def _common(self, query: SearchQuery) -> bool:
        """Whether the empty query's filters keep so many documents that walking the date index back
        fills the window soonest (else the filters' own indexes find fewer rows to sort).

        SQLite, left to itself, took the label index for `label=related` and sorted a third of the
        archive by date (49 ms at 100,000 documents, growing); the kept counts tell it better."""
        if query.story_id or query.sources:
            return False
        counts = dict(self._reader.execute("SELECT key, n FROM doc_counts").fetchall())
        total = counts.get("documents", 0)
        kept = float(total)
        for column, values in (("label", query.labels), ("language", query.languages)):
            if values:
                kept *= sum(counts.get(f"{column}:{v}", 0) for v in values) / max(total, 1)
        for field, values in (("theme", query.themes), ("country", query.countries),
                              ("organization", query.organizations), ("infrastructure", query.infrastructure),
                              ("person", query.people)):
            if values:
                found = self._reader.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM doc_terms WHERE field = ? "
                    f"AND value IN ({','.join('?' * len(values))}) LIMIT ?)", (field, *values, total)
                ).fetchone()[0]
                kept *= found / max(total, 1)
        # walking visits about window × total / kept rows, the filters' indexes `kept` rows and a sort
        # of them: walk when that is no more than twice as many
        return kept > 0 and MATCH_WINDOW * total / kept <= 2 * kept

    def _page_of_stories(self, order: str, limit: int, offset: int) -> list[tuple[int, float, int]]:
        """One page of the window's stories: (rowid of the copy shown, its rank, copies in the window).

        GROUP BY, then the page's few stories looked up again: a window function over the matches
        cost four times as much (24 ms against 6 at 10,000 matches). A story's best-ranked copy is
        shown; stories sort by their best rank, or by their newest copy."""
        by = order.replace("rank", "best").replace("published", "newest")
        stories = [r[0] for r in self._reader.execute(
            f"""SELECT story, MIN(rank) AS best, MAX(published) AS newest FROM temp.matched GROUP BY story
                ORDER BY {by}, story LIMIT ? OFFSET ?""", (limit, offset))]
        if not stories:
            return []
        copies: dict[str, list[tuple[float, str, int]]] = {}
        for story, rid, rank, published in self._reader.execute(
                f"SELECT story, rid, rank, published FROM temp.matched WHERE story IN ({','.join('?' * len(stories))})",
                stories):
            copies.setdefault(story, []).append((rank, published or "", rid))
        rows = []
        for story in stories:
            # best rank first, then the newest copy, then the first stored
            rank, _, rid = min(copies[story], key=lambda c: (c[0], not c[1], _descending(c[1]), c[2]))
            rows.append((rid, rank, len(copies[story])))
        return rows

    def timeline(self, query: SearchQuery) -> list[TimelinePoint]:
        """Stories per day and label among the documents a query matches (past TIMELINE_SAMPLE, estimated)."""
        parsed = searchable(query.text)
        match = fts_expression(parsed, query.languages)
        where, params = _filters(query)
        if parsed.exclusions_only:
            where.append("d.rowid NOT IN (SELECT rowid FROM doc_fts WHERE doc_fts MATCH ?)")
            params.append(fts_negatives(parsed, query.languages))
        try:
            if not match and not where:
                # the landing page's: kept by triggers, as the counts of `stats` are
                return [TimelinePoint(day=day, label=label, stories=n) for day, label, n in self._reader.execute(
                    "SELECT day, label, stories FROM doc_days WHERE stories > 0 ORDER BY day, label")]
            if match:
                base = "FROM doc_fts JOIN documents d ON d.rowid = doc_fts.rowid WHERE doc_fts MATCH ?"
                # counting a term's documents reads its doclist only, no row of the archive
                upper = self._reader.execute("SELECT COUNT(*) FROM doc_fts WHERE doc_fts MATCH ?", (match,)).fetchone()[0]
                params = [match, *params]
            else:
                base = "FROM documents d WHERE 1"
                upper = self._reader.execute("SELECT n FROM doc_counts WHERE key = 'documents'").fetchone()[0]
            # one document in `step`, picked by a hash of its rowid (a plain rowid % step aliased with
            # feeds that publish on a cycle), the counts scaled back; the same sample on every reload
            step = -(-upper // TIMELINE_SAMPLE)
            sample = f" AND ((d.rowid * 1103515245 + 12345) / 65536) % {step} = 0" if step > 1 else ""
            sql = (f"SELECT substr(d.published_at, 1, 10) AS day, d.label, COUNT(DISTINCT d.story_id) {base}"
                   + "".join(f" AND {w}" for w in where) + sample
                   + " AND d.published_at IS NOT NULL GROUP BY day, d.label ORDER BY day")
            rows = self._reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"timeline failed for {query.text!r}: {exc}") from exc
        return [TimelinePoint(day=day, label=label, stories=n * step, estimated=step > 1) for day, label, n in rows]

    def _facets(self, matched: int) -> dict[str, tuple[FacetValue, ...]]:
        """Facet counts over the matches; past FACET_SAMPLE, over the newest FACET_SAMPLE, scaled up."""
        sample = "temp.matched" if matched <= FACET_SAMPLE else \
            f"(SELECT * FROM temp.matched ORDER BY rowid LIMIT {FACET_SAMPLE})"
        scale = max(1.0, matched / FACET_SAMPLE)
        facets: dict[str, tuple[FacetValue, ...]] = {}
        for name, column in _FACET_COLUMNS.items():
            rows = self._reader.execute(
                f"""SELECT m.{column}, COUNT(*) FROM {sample} m WHERE m.{column} IS NOT NULL
                    GROUP BY m.{column} ORDER BY COUNT(*) DESC, m.{column} LIMIT ?""", (FACET_LIMIT,),
            ).fetchall()
            facets[name] = tuple(FacetValue(value=str(v), count=round(c * scale)) for v, c in rows)
        for name, field in _FACET_TERMS.items():
            # CROSS JOIN fixes the loop order: the matches outside, each one's terms looked up by the
            # (doc_rowid, field) index inside. Left to itself the planner walked every term of the field
            # in the archive and scanned the unindexed temp table for each: quadratic (0.9 s at 5,000
            # documents for countries, 6 ms this way)
            rows = self._reader.execute(
                f"""SELECT t.value, COUNT(*) FROM {sample} m CROSS JOIN doc_terms t
                   ON t.doc_rowid = m.rid AND t.field = ? GROUP BY t.value ORDER BY COUNT(*) DESC, t.value LIMIT ?""",
                (field, FACET_LIMIT),
            ).fetchall()
            facets[name] = tuple(FacetValue(value=v, count=round(c * scale)) for v, c in rows)
        return facets

    def stats(self) -> StoreStats:
        """Counts for `energywatch stats` and the UI (kept by triggers: no count over the archive)."""
        db = self._reader
        counted = dict(db.execute("SELECT key, n FROM doc_counts WHERE n > 0").fetchall())
        # two statements: SQLite answers a lone MIN or MAX from the index, both together by a full scan
        oldest = db.execute("SELECT MIN(published_at) FROM documents").fetchone()[0]
        newest = db.execute("SELECT MAX(published_at) FROM documents").fetchone()[0]
        last = db.execute("SELECT value FROM meta WHERE key = 'last_indexed'").fetchone()
        states = list(self.get_feed_states().values())

        def counts(column: str) -> dict[str, int]:
            found = [(key.split(":", 1)[1], n) for key, n in counted.items() if key.startswith(f"{column}:")]
            return dict(sorted(found, key=lambda kv: (-kv[1], kv[0])))

        return StoreStats(
            documents=counted.get("documents", 0), stories=counted.get("stories", 0), feeds=len(states),
            feeds_failing=sum(1 for s in states if s.consecutive_failures and not s.disabled),
            feeds_disabled=sum(1 for s in states if s.disabled),
            by_language=counts("language"), by_label=counts("label"), by_extraction=counts("extraction"),
            oldest_published=_dt(oldest), newest_published=_dt(newest), last_indexed=_dt(last[0] if last else None),
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
        elif self._db.in_transaction:
            # SQLite itself rolls back after some errors (a full disk): a second ROLLBACK would fail
            # and hide the error that matters
            self._db.execute("ROLLBACK")


def _fts_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_expression(parsed: ParsedQuery, languages: Sequence[str] = ()) -> str | None:
    """An FTS5 MATCH expression: the query's tree stemmed in each candidate language, OR-ed together.

    Each language renders the whole tree, so that an AND of words holds within one language; an
    exclusion leaves out a document in whichever language its words stem to."""
    if parsed.empty or parsed.node is None:
        return None
    langs = _languages(parsed, languages)
    return " OR ".join(unique(f"({_fts(parsed.node, lang, langs)})" for lang in langs))


def fts_negatives(parsed: ParsedQuery, languages: Sequence[str] = ()) -> str:
    """What a document must not match for an exclusions-only query (-gas), in every candidate language."""
    langs = _languages(parsed, languages)
    return " OR ".join(unique(_fts_any_language(part, langs) for part in parsed.exclusions))


def _languages(parsed: ParsedQuery, languages: Sequence[str]) -> list[str | None]:
    return list(languages) or list(candidate_languages(" ".join(parsed.all_words()))) or [None]


def _fts(node: Node, lang: str | None, langs: Sequence[str | None]) -> str:
    if isinstance(node, Term):
        column = {"title": "title : ", "text": "body : "}.get(node.field or "", "")
        if node.prefix:
            forms = [_fts_string(f) + " *" for f in prefix_forms(node.tokens[0], lang)]
            return column + (forms[0] if len(forms) == 1 else "(" + " OR ".join(forms) + ")")
        return column + _fts_string(" ".join(stem_tokens(list(node.tokens), lang)))
    if isinstance(node, AnyOf):
        return " OR ".join(f"({_fts(p, lang, langs)})" for p in node.parts)
    if isinstance(node, Not):  # only as a part of All (the parser sees to it)
        raise StoreError("an exclusion outside an AND group reached the SQLite renderer")
    wanted = " AND ".join(f"({_fts(p, lang, langs)})" for p in node.parts if not isinstance(p, Not))
    unwanted = [_fts_any_language(p.part, langs) for p in node.parts if isinstance(p, Not)]
    return f"({wanted}) NOT ({' OR '.join(unwanted)})" if unwanted else wanted


def _fts_any_language(node: Node, langs: Sequence[str | None]) -> str:
    return " OR ".join(unique(f"({_fts(node, lang, langs)})" for lang in langs))


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
    if query.added_since:
        where.append("d.indexed_at >= ?")
        params.append(_iso(query.added_since))
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
              "prepare_lookups", "find_by_content_hash", "find_by_bands", "search", "timeline", "stats", "prune",
              "backup", "save_search", "saved_searches", "delete_search", "documents_per_feed"):
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
