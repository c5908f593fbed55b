"""The DAGs, imported and run for real with dag.test() against a local server and the SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from conftest import article_html, rss
from energywatch.store.sqlite import SQLiteStore

PARAS = ["Drones attacked the gas pipeline compressor station overnight, the operator said, and NATO "
         "condemned the sabotage of critical energy infrastructure in the region."] * 3


def test_no_import_errors_and_structure(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {"energywatch_ingest", "energywatch_backfill"} <= set(dagbag.dag_ids)
    ingest = dagbag.get_dag("energywatch_ingest")
    assert ingest.catchup is False and ingest.max_active_runs == 1
    assert ingest.timetable.expression == "*/10 * * * *"
    assert set(ingest.task_dict) == {"plan", "ingest", "record", "announce"}
    ingest_task = ingest.task_dict["ingest"]
    assert ingest_task.pool == "energywatch_fetch" and ingest_task.retries == 3
    assert ingest_task.retry_exponential_backoff and ingest_task.execution_timeout is not None
    assert type(ingest_task).__name__.endswith("MappedOperator")  # dynamic task mapping over batches
    outlets = [getattr(o, "uri", "").rstrip("/") for o in ingest.task_dict["announce"].outlets]
    assert outlets == ["energywatch://documents"]  # Airflow normalises the URI with a trailing slash
    backfill = dagbag.get_dag("energywatch_backfill")
    assert type(backfill.timetable).__name__ == "NullTimetable"
    assert set(backfill.params.keys()) == {"feed_ids", "since"}


def test_event_driven_dag_structure(dagbag) -> None:
    events = dagbag.get_dag("energywatch_events")
    assert set(events.task_dict) == {"plan", "ingest", "record", "announce"}
    assert type(events.timetable).__name__ == "AssetOrTimeSchedule"
    watchers = [w for _, a in events.timetable.asset_condition.iter_assets() for w in a.watchers]
    assert len(watchers) == 1
    # the DagBag holds the watcher's trigger as Airflow serialised it for the triggerer
    trigger = watchers[0].trigger
    path, kwargs = (trigger["classpath"], trigger["kwargs"]) if isinstance(trigger, dict) else trigger.serialize()
    assert path == "energywatch_triggers.NewFeedItemsTrigger" and set(kwargs) == {"poll_seconds", "store_conn_id"}


def test_the_trigger_fires_for_changed_feeds_only(dagbag, httpserver: HTTPServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """NewFeedItemsTrigger.run() in an event loop, as the triggerer runs it: an event names the feed
    whose body changed since its last ingestion, once; a 304 and an unchanged body fire nothing."""
    import asyncio

    from energywatch.config import Settings
    from energywatch.models import Feed
    from energywatch.pipeline import run
    from energywatch_triggers import NewFeedItemsTrigger

    items = {"one": [{"title": "a", "link": httpserver.url_for("/p"), "guid": "1"}], "two": []}
    for name in items:
        httpserver.expect_request(f"/{name}.rss").respond_with_handler(
            lambda request, name=name: __import__("werkzeug").Response(rss(items[name]),
                                                                      content_type="application/rss+xml"))
    httpserver.expect_request("/p").respond_with_data(article_html("Pipeline attack", PARAS), content_type="text/html")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n" + "".join(f"  - {{id: {n}, name: {n}, url: '{httpserver.url_for(f'/{n}.rss')}'}}\n"
                                         for n in items), encoding="utf-8")
    monkeypatch.setenv("ENERGYWATCH_FEEDS_FILE", str(feeds))
    monkeypatch.setenv("ENERGYWATCH_STORE", f"sqlite:///{tmp_path / 't.db'}")
    monkeypatch.setenv("ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES", "true")
    settings = Settings(feeds_file=feeds, store=f"sqlite:///{tmp_path / 't.db'}", allow_private_addresses=True,
                        workers=1)
    store = SQLiteStore(tmp_path / "t.db")
    run(settings, [Feed(id=n, name=n, url=httpserver.url_for(f"/{n}.rss")) for n in items], store)
    store.close()

    async def first_events(count: int, change: bool) -> list[dict]:
        trigger = NewFeedItemsTrigger(poll_seconds=0.2, store_conn_id="no_such_connection")
        found: list[dict] = []

        async def collect() -> None:
            async for event in trigger.run():
                found.append(event.payload)
                if len(found) >= count:
                    return

        if change:
            items["two"].append({"title": "b", "link": httpserver.url_for("/p"), "guid": "2"})
        try:
            await asyncio.wait_for(collect(), 5)
        except asyncio.TimeoutError:
            pass
        return found

    assert asyncio.run(first_events(1, change=False)) == []  # everything as the last ingestion left it
    assert asyncio.run(first_events(2, change=True)) == [{"feeds": ["two"]}]  # once, not at every poll


def test_dag_files_are_light_at_parse_time() -> None:
    import ast

    heavy = {"energywatch.pipeline", "energywatch.orchestration", "trafilatura", "httpx", "feedparser"}
    for path in (Path(__file__).resolve().parents[2] / "dags").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & heavy, f"{path.name} imports {names & heavy} at parse time"


def _serve(server: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    items = []
    for i in range(3):
        server.expect_request(f"/af/{i}").respond_with_data(
            article_html(f"Pipeline attack {i}", [f"Report number {i}."] + PARAS), content_type="text/html")
        items.append({"title": f"Pipeline attack {i}", "link": server.url_for(f"/af/{i}"), "guid": f"af-{i}"})
    server.expect_request("/af.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - id: af-local\n    name: Local\n    url: {server.url_for('/af.rss')}\n"
                     "    language: en\n    country: GB\n", encoding="utf-8")
    db = tmp_path / "af.db"
    monkeypatch.setenv("ENERGYWATCH_FEEDS_FILE", str(feeds))
    monkeypatch.setenv("ENERGYWATCH_STORE", f"sqlite:///{db}")
    monkeypatch.setenv("ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES", "true")
    monkeypatch.setenv("ENERGYWATCH_WORKERS", "1")
    return db


def _asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.uri.in_([uri, uri + "/"])).order_by(AssetEvent.id).all())
        return [dict(r.extra or {}) for r in rows]


def test_ingest_dag_end_to_end_twice(dagbag, httpserver: HTTPServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = _serve(httpserver, tmp_path, monkeypatch)
    dag = dagbag.get_dag("energywatch_ingest")
    before = len(_asset_events("energywatch://documents"))
    run = dag.test()
    assert str(run.state).endswith("success"), run.state
    store = SQLiteStore(db)
    try:
        assert store.stats().documents == 3
        assert store.stats().by_label.get("core") == 3
    finally:
        store.close()
    events = _asset_events("energywatch://documents")
    assert len(events) == before + 1 and events[-1]["documents_stored"] == 3 and events[-1]["batches"] == 1
    again = dag.test(run_conf={"due_only": False})  # poll again now, not in ten minutes
    assert str(again.state).endswith("success")
    store = SQLiteStore(db)
    try:
        assert store.stats().documents == 3  # nothing duplicated
    finally:
        store.close()
    # nothing new: the run succeeds, and the Asset is not updated (no alerts run for nothing)
    assert len(_asset_events("energywatch://documents")) == before + 1
    idle = dag.test(run_conf={"due_only": True})  # nothing due (run_conf is explicit: dag.test() keeps params)
    assert str(idle.state).endswith("success")
    assert len(_asset_events("energywatch://documents")) == before + 1
    states = {ti.task_id: str(ti.state) for ti in idle.get_task_instances()}
    assert states["record"].endswith("success") and states["announce"].endswith("skipped"), states


def test_backfill_dag_with_params_and_invalid_params(dagbag, httpserver: HTTPServer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    db = _serve(httpserver, tmp_path, monkeypatch)
    dag = dagbag.get_dag("energywatch_backfill")
    run = dag.test(run_conf={"feed_ids": ["af-local"], "since": "2020-01-01"})
    assert str(run.state).endswith("success"), run.state
    again = dag.test(run_conf={"feed_ids": ["all"], "since": "2020-01-01"})
    assert str(again.state).endswith("success")
    store = SQLiteStore(db)
    try:
        assert store.stats().documents == 3
    finally:
        store.close()
    from airflow.sdk.definitions.param import ParamValidationError  # noqa: F401  (documented exception)

    with pytest.raises(Exception, match="since|date|format"):
        dag.test(run_conf={"feed_ids": ["af-local"], "since": "last tuesday"})
    with pytest.raises(Exception, match="feed_ids|pattern|minItems|too short|non-empty|should be"):
        dag.test(run_conf={"feed_ids": [], "since": "2020-01-01"})
    unknown = dag.test(run_conf={"feed_ids": ["no-such-feed"], "since": "2020-01-01"})
    assert str(unknown.state).endswith("failed")


def test_plugin_links(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow import plugins_manager

    plugins = plugins_manager.get_plugin_info()
    ours = next(p for p in plugins if p["name"] == "energywatch_links")
    hrefs = [v["href"] for v in ours["external_views"]]
    assert hrefs[0] == "http://localhost:8000"
    assert hrefs[1].endswith("/app/dashboards#/view/energywatch-overview")
    # a url_route would frame the pages inside Airflow, which the search UI refuses (frame-ancestors 'none')
    assert not any(v.get("url_route") for v in ours["external_views"])
    json.dumps(ours["external_views"])


def _serve_with_webhook(server: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The local feed, pages and a webhook receiver, with a rule that alerts on NATO core stories."""
    from werkzeug import Request, Response

    received: list[bytes] = []

    def hook(request: Request) -> Response:
        received.append(request.get_data())
        return Response("ok")

    server.expect_request("/hook", method="POST").respond_with_handler(hook)
    _serve(server, tmp_path, monkeypatch)
    rules = tmp_path / "alerts.yaml"
    rules.write_text("channels:\n  hook: {type: webhook, url_env: ENERGYWATCH_WEBHOOK_URL}\n"
                     "rules:\n  - {name: nato-core, labels: [core], organizations: [NATO], channels: [hook]}\n",
                     encoding="utf-8")
    monkeypatch.setenv("ENERGYWATCH_ALERTS_FILE", str(rules))
    monkeypatch.setenv("ENERGYWATCH_WEBHOOK_URL", server.url_for("/hook"))
    return received


def test_alerts_dag_after_ingest(dagbag, httpserver: HTTPServer, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    received = _serve_with_webhook(httpserver, tmp_path, monkeypatch)
    alerts = dagbag.get_dag("energywatch_alerts")
    assert [getattr(a, "uri", "").rstrip("/") for a in alerts.timetable.asset_condition.objects] == \
        ["energywatch://documents"] if hasattr(alerts.timetable, "asset_condition") else True
    assert str(dagbag.get_dag("energywatch_ingest").test(run_conf={"due_only": False}).state).endswith("success")
    assert str(alerts.test().state).endswith("success")
    # the three pages tell one story (near-duplicates): one alert, with its copies counted
    assert len(received) == 1 and json.loads(received[0])["stories"][0]["copies"] == 3
    assert str(alerts.test().state).endswith("success")
    assert len(received) == 1  # nothing sent twice


@pytest.mark.parametrize(("form", "expected"), [
    ("https://hooks.example.org/services/T0/B0/xyz", "https://hooks.example.org/services/T0/B0/xyz"),
    ("http://:s3cret@127.0.0.1:8085/hook", "http://127.0.0.1:8085/hook"),
    ('{"conn_type": "http", "host": "https://hooks.example.org/services/T0/B0/xyz"}',
     "https://hooks.example.org/services/T0/B0/xyz"),
    ('{"conn_type": "http", "host": "hooks.example.org", "schema": "https", "port": 8443,'
     ' "extra": {"endpoint": "/services/T0/B0/xyz"}}', "https://hooks.example.org:8443/services/T0/B0/xyz"),
    ('{"conn_type": "http", "host": "hooks.example.org", "schema": "services/T0/B0/xyz"}',
     "http://hooks.example.org/services/T0/B0/xyz"),
    ('{"conn_type": "generic", "host": "hooks.example.org"}', "https://hooks.example.org"),
])
def test_webhook_connection_in_each_form_users_write(form: str, expected: str) -> None:
    from airflow.sdk import Connection
    from energywatch_common import webhook_url

    conn = Connection.from_json(form, conn_id="energywatch_slack") if form.startswith("{") else \
        Connection.from_uri(form, conn_id="energywatch_slack")
    assert webhook_url(conn) == expected


def test_a_store_connection_naming_a_cluster_s_nodes() -> None:
    """The JSON form of a connection (Airflow's URI form cannot hold several hosts) gives every node."""
    from airflow.sdk import Connection

    from energywatch.store.elasticsearch import client_options, index_prefix

    conn = Connection.from_json('{"conn_type": "http", "host": "es1:9200,es2:9200,es3:9200", "login": "ingest", '
                                '"password": "p@ss:w", "extra": {"index_prefix": "ew-prod"}}', conn_id="energywatch_store")
    options = client_options(conn.get_uri(), environ={})
    assert options["hosts"] == ["http://es1:9200", "http://es2:9200", "http://es3:9200"]
    assert options["basic_auth"] == ("ingest", "p@ss:w") and index_prefix(conn.get_uri()) == "ew-prod"


def test_ingest_and_alerts_dags_on_elasticsearch(dagbag, httpserver: HTTPServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, elasticsearch_url: str) -> None:
    """The production path: the DAGs' tasks store into and deliver from a live Elasticsearch node.

    The store comes from the energywatch_store connection, in the JSON form that can list a cluster's
    nodes (here the one node under two names)."""
    from urllib.parse import urlsplit

    from energywatch.store.elasticsearch import ElasticsearchStore

    received = _serve_with_webhook(httpserver, tmp_path, monkeypatch)
    monkeypatch.setenv("ENERGYWATCH_STORE", "sqlite:///nowhere/not-this-one.db")
    node = urlsplit(elasticsearch_url)
    monkeypatch.setenv("AIRFLOW_CONN_ENERGYWATCH_STORE", json.dumps({
        "conn_type": "http", "host": f"localhost:{node.port},{node.hostname}:{node.port}",
        "login": node.username, "password": node.password}))
    store = ElasticsearchStore.from_url(elasticsearch_url)
    try:
        ingest = dagbag.get_dag("energywatch_ingest")
        assert str(ingest.test(run_conf={"due_only": False}).state).endswith("success")
        store.prepare_lookups()  # another store object wrote them: searches see them after a refresh
        assert store.stats().documents == 3
        alerts = dagbag.get_dag("energywatch_alerts")
        assert str(alerts.test().state).endswith("success")
        # three near-duplicate pages, one story, one alert; nothing again on a second run of both
        assert len(received) == 1 and json.loads(received[0])["stories"][0]["copies"] == 3
        assert str(ingest.test(run_conf={"due_only": False}).state).endswith("success")
        assert str(alerts.test().state).endswith("success")
        store.prepare_lookups()
        assert len(received) == 1 and store.stats().documents == 3
    finally:
        store.drop_all()
        store.close()
