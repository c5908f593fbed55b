"""The command line, run as a user would: feeds check, run, search, stats, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from conftest import article_html, rss
from energywatch.cli import app

runner = CliRunner()
PARAS = ["Газопровод был поврежден в результате атаки беспилотников, сообщили в энергетической компании. "
         "Поставки газа в соседние страны временно прекращены, ведется расследование."] * 3


def env(tmp_path: Path, feeds: Path) -> dict[str, str]:
    return {"ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "ENERGYWATCH_STORE": f"sqlite:///{tmp_path / 'cli.db'}",
            "ENERGYWATCH_FEEDS_FILE": str(feeds), "ENERGYWATCH_WORKERS": "1"}


def write_feeds(tmp_path: Path, server: HTTPServer) -> Path:
    server.expect_request("/ru/1").respond_with_data(article_html("Атака на газопровод", PARAS, lang="ru"),
                                                     content_type="text/html; charset=utf-8")
    server.expect_request("/feed").respond_with_data(
        rss([{"title": "Атака на газопровод", "link": server.url_for("/ru/1"), "guid": "1"}]),
        content_type="application/rss+xml", headers={"Last-Modified": "Fri, 20 Nov 2026 10:00:00 GMT"})
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - id: ru-local\n    name: Локальная лента\n    url: {server.url_for('/feed')}\n"
                     "    language: ru\n    country: RU\n", encoding="utf-8")
    return feeds


def test_run_search_stats(tmp_path: Path, httpserver: HTTPServer) -> None:
    e = env(tmp_path, write_feeds(tmp_path, httpserver))
    result = runner.invoke(app, ["run", "--json"], env=e)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["documents_stored"] == 1
    table = runner.invoke(app, ["run"], env=e)
    assert table.exit_code == 0 and "documents stored" in table.output
    found = runner.invoke(app, ["search", "газопроводы", "--lang", "ru", "--json"], env=e)
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert hits and hits[0]["document"]["language"] == "ru"
    text = runner.invoke(app, ["search", "атаки", "--since", "3650d"], env=e)
    assert "Атака на газопровод" in text.output
    stats = runner.invoke(app, ["stats", "--json"], env=e)
    assert json.loads(stats.output)["documents"] == 1


def test_feeds_check_reports_health(tmp_path: Path, httpserver: HTTPServer) -> None:
    feeds = write_feeds(tmp_path, httpserver)
    with feeds.open("a", encoding="utf-8") as f:
        f.write(f"  - id: dead\n    name: Dead\n    url: {httpserver.url_for('/dead')}\n")
    httpserver.expect_request("/dead").respond_with_data("", status=410)
    result = runner.invoke(app, ["feeds", "check", "--json"], env=env(tmp_path, feeds))
    assert result.exit_code == 1  # one unhealthy feed
    report = {r["feed_id"]: r for r in json.loads(result.output)}
    assert report["ru-local"]["items"] == 1 and report["ru-local"]["format"] == "rss20"
    assert report["ru-local"]["last_modified"] == "Fri, 20 Nov 2026 10:00:00 GMT"
    assert "410" in report["dead"]["error"]


def test_bad_feed_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - id: Bad Id\n    name: x\n    url: ftp://x\n  - id: ok\n    name: y\n", encoding="utf-8")
    result = runner.invoke(app, ["feeds", "check", "--offline"], env=env(tmp_path, bad))
    assert result.exit_code == 2
    assert "feed #1" in result.output and "feed #2" in result.output and "url" in result.output
    missing = runner.invoke(app, ["run"], env=env(tmp_path, tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_bad_store_url_and_since(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "x", "--store", "mysql://x"], env={})
    assert result.exit_code == 2 and "sqlite:///" in result.output
    result = runner.invoke(app, ["search", "x", "--since", "yesterday"],
                           env={"ENERGYWATCH_STORE": f"sqlite:///{tmp_path / 'a.db'}"})
    assert result.exit_code == 2 and "7d" in result.output


def test_search_filters_explain_and_rescore(tmp_path: Path, httpserver: HTTPServer) -> None:
    e = env(tmp_path, write_feeds(tmp_path, httpserver))
    assert runner.invoke(app, ["run", "--json"], env=e).exit_code == 0
    core = runner.invoke(app, ["search", "--label", "core", "--json"], env=e)
    hits = json.loads(core.output)["hits"]
    assert len(hits) == 1 and hits[0]["document"]["relevance"]["label"] == "core"
    doc_id, url = hits[0]["document"]["id"], hits[0]["document"]["url"]
    assert json.loads(runner.invoke(app, ["search", "--label", "none", "--json"], env=e).output)["total"] == 0
    assert json.loads(runner.invoke(app, ["search", "--theme", "pipelines", "--min-score", "0.5", "--json"],
                                     env=e).output)["total"] == 1
    assert json.loads(runner.invoke(app, ["search", "--country", "ua", "--json"], env=e).output)["total"] == 0
    explained = runner.invoke(app, ["explain", url], env=e)
    assert explained.exit_code == 0, explained.output
    assert "label core" in explained.output and "pipeline" in explained.output and "evidence" in explained.output
    as_json = json.loads(runner.invoke(app, ["explain", doc_id, "--json"], env=e).output)
    assert as_json["relevance"]["label"] == "core" and as_json["features"]["cooccurrence"] > 0
    missing = runner.invoke(app, ["explain", "https://nowhere.example/x"], env=e)
    assert missing.exit_code == 2 and "not in the store" in missing.output
    rescored = runner.invoke(app, ["rescore"], env=e)
    assert rescored.exit_code == 0 and "re-scored 1 document(s), 0 changed" in rescored.output


def test_backup_then_prune(tmp_path: Path, httpserver: HTTPServer) -> None:
    e = env(tmp_path, write_feeds(tmp_path, httpserver))
    assert runner.invoke(app, ["run", "--json"], env=e).exit_code == 0
    copy = tmp_path / "backups" / "copy.db"
    done = runner.invoke(app, ["backup", str(copy)], env=e)
    assert done.exit_code == 0 and "backup written" in done.output and copy.is_file()
    again = runner.invoke(app, ["backup", str(copy)], env=e)
    assert again.exit_code == 2 and "never overwrites" in again.output
    # not confirmed: nothing goes
    kept = runner.invoke(app, ["prune", "--before", "2100-01-01"], env=e, input="n\n")
    assert kept.exit_code == 1
    assert json.loads(runner.invoke(app, ["stats", "--json"], env=e).output)["documents"] == 1
    pruned = runner.invoke(app, ["prune", "--before", "2100-01-01", "--yes"], env=e)
    assert pruned.exit_code == 0 and "deleted 1 document" in pruned.output, pruned.output
    assert json.loads(runner.invoke(app, ["stats", "--json"], env=e).output)["documents"] == 0
    # the backup still has it
    restored = runner.invoke(app, ["stats", "--json", "--store", f"sqlite:///{copy}"], env=e)
    assert json.loads(restored.output)["documents"] == 1
    bad = runner.invoke(app, ["prune", "--before", "soon", "--yes"], env=e)
    assert bad.exit_code == 2 and "error" in bad.output
    es = runner.invoke(app, ["backup", str(tmp_path / "x.db"), "--store", "http://127.0.0.1:9"], env=e)
    assert es.exit_code == 2 and "snapshot" in es.output
