"""The embedded store when the disk fills, another process holds the lock, or the file is damaged:
a clear error that says what to do, the run's summary so far, and nothing lost or half-written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from conftest import rss
from energywatch.cli import app
from energywatch.config import Settings
from energywatch.errors import StoreError, StoreUnavailable
from energywatch.models import Feed, RunSummary
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore
from test_pipeline import serve_articles


def _feed(server: HTTPServer, n: int = 6) -> list[Feed]:
    items = serve_articles(server, n, prefix="full")
    server.expect_request("/full.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    return [Feed(id="full", name="Full", url=server.url_for("/full.rss"), language="en")]


def test_a_full_disk_ends_the_run_clearly_and_loses_nothing(settings: Settings, tmp_path: Path,
                                                           httpserver: HTTPServer) -> None:
    feeds = _feed(httpserver)
    store = SQLiteStore(tmp_path / "full.db")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own "database or disk is full"
    with pytest.raises(StoreError, match="disk is full.*Free disk space and run again") as caught:
        run(settings, feeds, store)
    summary = caught.value.summary
    assert isinstance(summary, RunSummary) and summary.aborted and summary.documents_stored < 6
    assert not isinstance(caught.value, StoreUnavailable)
    store._db.execute("PRAGMA max_page_count = 1073741823")
    # what the full disk refused was not marked seen: the next run stores exactly the rest
    assert run(settings, feeds, store).documents_stored == 6 - summary.documents_stored
    assert store.stats().documents == 6
    store.close()


def test_a_store_locked_past_the_busy_timeout(settings: Settings, tmp_path: Path, httpserver: HTTPServer) -> None:
    feeds = _feed(httpserver, 2)
    store = SQLiteStore(tmp_path / "locked.db")
    store._db.execute("PRAGMA busy_timeout = 200")
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked by another process.*retry later"):
            run(settings, feeds, store)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert run(settings, feeds, store).documents_stored == 2
    store.close()


def test_a_damaged_store_says_how_to_check_it(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    SQLiteStore(path).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, overwritten
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["search", "gas", "--store", f"sqlite:///{path}"])
    assert result.exit_code == 2, result.output
    assert "PRAGMA integrity_check" in result.output and "backup" in result.output, result.output
    assert "Traceback" not in result.output
