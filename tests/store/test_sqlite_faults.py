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
    # 16 KiB pages hold a few compressed documents each: enough of them to need new pages
    feeds = _feed(httpserver, 40)
    store = SQLiteStore(tmp_path / "full.db")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    with pytest.raises(StoreError, match="disk is full.*Free disk space and run again") as caught:
        run(settings, feeds, store)
    summary = caught.value.summary
    assert isinstance(summary, RunSummary) and summary.aborted and summary.documents_stored < 40
    assert not isinstance(caught.value, StoreUnavailable)
    store._db.execute("PRAGMA max_page_count = 1073741823")
    # what the full disk refused was not marked seen: the next run stores exactly the rest
    assert run(settings, feeds, store).documents_stored == 40 - summary.documents_stored
    assert store.stats().documents == 40
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


def test_a_reader_never_sees_another_thread_s_uncommitted_rows(tmp_path: Path) -> None:
    import threading

    from store.test_contract import EN, RU

    store = SQLiteStore(tmp_path / "threads.db")
    inside, release = threading.Event(), threading.Event()

    class Paused:
        """The writer connection, held open half-way through a batch."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self._db = db

        def execute(self, sql: str, *args: object):
            result = self._db.execute(sql, *args)
            if sql.lstrip().startswith("INSERT INTO documents") and not inside.is_set():
                inside.set()
                release.wait(10)
            return result

        def __getattr__(self, name: str):
            return getattr(self._db, name)

    store._db = Paused(store._db)
    writer = threading.Thread(target=store.put_documents, args=([RU, EN],))
    writer.start()
    try:
        assert inside.wait(10)
        assert store.get_document(RU.id) is None and store.stats().documents == 0  # not committed yet
    finally:
        release.set()
        writer.join(10)
    assert store.get_document(RU.id) is not None and store.stats().documents == 2
    store.close()


def test_a_store_on_a_read_only_mount_can_still_be_searched(tmp_path: Path) -> None:
    import json
    import os
    import shutil
    import subprocess
    import sys

    from store.test_contract import RU

    folder = tmp_path / "ro"
    folder.mkdir()
    store = SQLiteStore(folder / "archive.db")
    store.put_documents([RU])
    store.close()
    search = [sys.executable, "-m", "energywatch", "search", "Баку", "--json", "--store", f"sqlite:///{folder}/archive.db"]
    run_ = [*search[:3], "run", "--store", f"sqlite:///{folder}/archive.db", "--feeds", str(tmp_path / "feeds.yaml")]
    # a feed that fails at once: the run then has a feed state to save, which a read-only store refuses
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - {id: closed, name: Closed, url: 'http://127.0.0.1:9/feed'}\n",
                                         encoding="utf-8")
    if os.geteuid() == 0:  # root writes anything a permission allows: a read-only bind mount stops it
        unshare = shutil.which("unshare")
        assert unshare, "util-linux's unshare is needed to test a read-only mount as root"
        wrap = lambda cmd: [unshare, "-m", "sh", "-c", f"mount --bind {folder} {folder} && mount -o remount,ro,bind "
                            f"{folder} && exec \"$@\"", "sh", *cmd]  # noqa: E731
    else:
        (folder / "archive.db").chmod(0o444)
        folder.chmod(0o555)
        wrap = lambda cmd: cmd  # noqa: E731
    try:
        found = subprocess.run(wrap(search), capture_output=True, text=True, timeout=120)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["total"] == 1
        refused = subprocess.run(wrap(run_), capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true"})
        assert refused.returncode == 2 and "opened read-only" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        folder.chmod(0o755)
