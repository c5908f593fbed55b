"""The embedded store's year-of-news layout: bounded searches, kept counts, the upgrade from schema 1,
online backup, and a contentless full-text index that forgets replaced text."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from energywatch.errors import StoreError
from energywatch.models import SearchQuery
from energywatch.store import sqlite as sqlite_store
from energywatch.store.sqlite import SQLiteStore, index_terms
from store.test_contract import ALL, AR, EN, EN_COPY, RU, T0, doc

V1_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sqlite_schema_v1.sql"


def _many(n: int, start: int = 0) -> list:
    return [doc(i, title=f"Grid report {i}", text=f"Gas and grid security update number {i}.", lang="en",
                days=i % 40, label=("core", "related")[i % 2], themes=("nato",) if i % 3 else ("lng",),
                story=None) for i in range(start, start + n)]


def test_replaced_text_is_forgotten_by_the_contentless_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.put_documents([EN])
    store.put_documents([EN.model_copy(update={"title": "Wind output", "text": "Turbines turned all winter."})])
    assert store.search(SearchQuery(text="solar")).total == 0
    assert store.search(SearchQuery(text="turbines")).total == 1
    # the index stays sound: FTS5's own check compares it with the stored index text
    store.put_documents(ALL)
    store._writer.execute("INSERT INTO doc_fts (doc_fts, rank) VALUES ('integrity-check', 0)")
    store.close()


def test_a_search_past_the_window_says_its_total_is_a_lower_bound(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.put_documents(_many(60))
    exact = store.search(SearchQuery(text="grid", group_stories=False))
    assert (exact.total, exact.total_exact, exact.facets_sample) == (60, True, None)
    monkeypatch.setattr(sqlite_store, "MATCH_WINDOW", 25)
    monkeypatch.setattr(sqlite_store, "FACET_SAMPLE", 10)
    bounded = store.search(SearchQuery(text="grid", group_stories=False))
    assert (bounded.total, bounded.total_exact, bounded.facets_sample) == (25, False, 25)
    # the newest by arrival are the ones ranked
    assert {h.document.id for h in bounded.hits} <= {d.id for d in _many(60)[-25:]}
    labels = {f.value: f.count for f in bounded.facets["label"]}
    assert sum(labels.values()) in range(24, 27)  # ten sampled, scaled to the 25 of the window
    store.close()


def test_the_timeline_of_a_huge_match_is_a_scaled_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.put_documents(_many(400))
    exact = store.timeline(SearchQuery(text="grid"))
    assert sum(p.stories for p in exact) == 400 and not any(p.estimated for p in exact)
    monkeypatch.setattr(sqlite_store, "TIMELINE_SAMPLE", 100)
    sampled = store.timeline(SearchQuery(text="grid"))
    assert all(p.estimated for p in sampled) and 300 <= sum(p.stories for p in sampled) <= 500
    days = {p.day for p in sampled}
    assert days <= {p.day for p in exact} and len(days) >= 30  # of 40: the shape is kept
    store.close()


def test_kept_day_counts_match_a_count_from_scratch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.put_documents([*ALL, *_many(50)])
    # copies move between stories, labels and days change, documents go
    store.put_documents([EN_COPY.model_copy(update={"story_id": EN_COPY.id, "published_at": T0}),
                         RU.model_copy(update={"relevance": RU.relevance.model_copy(update={"label": "none"})}),
                         *[d.model_copy(update={"story_id": _many(1)[0].id}) for d in _many(5, 10)]])
    store.prune(T0 + timedelta(days=3))
    kept = store.timeline(SearchQuery())
    # a filter that keeps everything takes the counting path instead of the kept table
    counted = store.timeline(SearchQuery(labels=("core", "related", "none")))
    assert [(p.day, p.label, p.stories) for p in kept] == [(p.day, p.label, p.stories) for p in counted]
    stats = store.stats()
    assert stats.documents == store._reader.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    assert stats.stories == store._reader.execute("SELECT COUNT(DISTINCT story_id) FROM documents").fetchone()[0]
    store.close()


def _v1_store(path: Path) -> None:
    """A store as energywatch wrote it before schema 2: JSON text, FTS5 with content, bands as terms."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(V1_SCHEMA.read_text())
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    for n, d in enumerate(ALL, start=1):
        d = d.model_copy(update={"indexed_at": T0, "lsh_bands": (f"0:{n:016x}", "1:shared")})
        db.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (n, d.id, d.feed_id, d.source, d.guid, d.language, d.published_at.isoformat(), T0.isoformat(),
                    d.relevance.label, d.relevance.score, d.story_id or d.id, d.duplicate_of, f"hash{n}",
                    d.extraction.value, d.model_dump_json()))
        db.execute("INSERT INTO doc_fts (rowid, title, body) VALUES (?, ?, ?)", (n, *index_terms(d)))
        for band in d.lsh_bands:
            db.execute("INSERT INTO doc_terms VALUES ('band', ?, ?)", (band, n))
        for country in d.entities.countries:
            db.execute("INSERT INTO doc_terms VALUES ('country', ?, ?)", (country, n))
    db.close()


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_store(path)
    # read-only, it cannot be upgraded: a clear error, the file untouched
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        if not _root():  # root writes whatever the modes say
            with pytest.raises(StoreError, match="older energywatch.*write access"):
                SQLiteStore(path)
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    store = SQLiteStore(path)
    assert store._reader.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert store.get_document(RU.id).title == RU.title
    assert store.search(SearchQuery(text="НАТО")).total == 1 and store.search(SearchQuery(text="الناتو")).total == 1
    assert store.search(SearchQuery(text="solar", countries=("ES",))).total == 1
    stats = store.stats()
    assert (stats.documents, stats.stories, stats.by_label) == (4, 3, {"core": 2, "related": 2})
    assert [(p.day, p.label) for p in store.timeline(SearchQuery())][0] == ("2026-11-01", "core")
    assert [d.id for d in store.find_by_bands(["1:shared", "0:0000000000000002"])][0] == AR.id
    # the upgraded index forgets replaced text like a new one
    store.put_documents([AR.model_copy(update={"text": "Nothing about the alliance."})])
    assert store.search(SearchQuery(text="أمين")).total == 1  # still in the title
    store._writer.execute("INSERT INTO doc_fts (doc_fts, rank) VALUES ('integrity-check', 0)")
    store.close()


def _root() -> bool:
    import os

    return os.geteuid() == 0


def test_backup_while_another_thread_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "live.db")
    store.put_documents(_many(200))
    stop = threading.Event()

    def ingest() -> None:
        n = 1000
        while not stop.is_set():
            store.put_documents(_many(20, n))
            n += 20

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        size = store.backup(tmp_path / "copy.db")
    finally:
        stop.set()
        writer.join()
    assert size > 0 and not (tmp_path / "copy.db.partial").exists()
    copy = SQLiteStore(tmp_path / "copy.db")
    copied = copy.stats().documents
    assert copied >= 200 and copied % 20 == 0  # whole batches only: one consistent moment
    assert copy.search(SearchQuery(text="grid", group_stories=False)).total == min(copied, sqlite_store.MATCH_WINDOW)
    copy.close()
    with pytest.raises(StoreError, match="never overwrites"):
        store.backup(tmp_path / "copy.db")
    store.close()
