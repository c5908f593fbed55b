"""The DAGs under Airflow's real scheduler and LocalExecutor, started with the README's own commands.

dag.test() runs tasks inside pytest; here the scheduler's executor runs them in task processes under
Airflow's supervisor, as users run them, which is where the workers' start-up used to fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from test_airflow.cluster import Airflow, cpu_seconds, session_pids
from test_airflow.scenario import (succeeded, base_env, end_to_end, energywatch_env, free_ports, publish,
                                   readme_airflow_commands, serve, store_documents, wait_for)

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Airflow, HTTPServer, object, Path]]:
    home = tmp_path_factory.mktemp("airflow-home")
    server = HTTPServer(threaded=True)
    server.start()
    feeds, rules, receiver = serve(server, home)
    db = home / "energywatch.db"
    exports, commands = readme_airflow_commands()
    api, worker_logs, trigger_logs = free_ports(3)
    # the README's settings, moved to free ports and a temporary home; nothing else changed
    moved = {k: v.replace("8080", str(api)).replace("8793", str(worker_logs)).replace("8794", str(trigger_logs))
             for k, v in exports.items()}
    moved.update({"AIRFLOW_HOME": str(home), **energywatch_env(home, feeds, rules, server, f"sqlite:///{db}"),
                  "ENERGYWATCH_EVENTS_POLL_SECONDS": "20"})
    airflow = Airflow(home=home, env=base_env(moved), api_port=api, ports=[api, worker_logs, trigger_logs])
    assert [c[1:] for c in commands] == [["db", "migrate"], ["pools", "set", "energywatch_fetch", "4",
                                                            "energywatch page fetching"], ["standalone"]]
    try:
        for command in commands[:-1]:
            airflow.cli(*command[1:])
        airflow.start("standalone", commands[-1])
        airflow.wait_healthy()
        for dag_id in ("energywatch_ingest", "energywatch_alerts", "energywatch_backfill", "energywatch_events"):
            airflow.wait_dag(dag_id)
        yield airflow, server, receiver, db
    finally:
        problems = airflow.stop()
        server.stop()
    assert not problems, problems


def _idle_cpu(airflow: Airflow, seconds: float) -> dict[str, float]:
    """CPU share of one core that each component (with its children) uses while nothing runs."""
    root = airflow.components[0].process.pid

    def component_of(pid: int, parents: dict[int, int]) -> str:
        while parents.get(pid, root) != root:
            pid = parents[pid]
        if pid == root:
            return "standalone"
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return next((n for n in ("scheduler", "dag-processor", "triggerer", "api") if n in title), title[:40])

    def sample() -> dict[str, float]:
        pids = session_pids(root)
        parents = {}
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            parents[pid] = int(stat[stat.rindex(")") + 2:].split()[1])
        totals: dict[str, float] = {}
        for pid in pids:
            try:
                name = component_of(pid, parents)
                totals[name] = totals.get(name, 0.0) + cpu_seconds(pid)
            except OSError:
                continue
        return totals

    before = sample()
    time.sleep(seconds)
    after = sample()
    return {name: round((after[name] - before.get(name, 0.0)) / seconds, 4) for name in after}


def test_ingest_and_alerts_under_the_real_scheduler(standalone) -> None:
    airflow, server, receiver, db = standalone
    assert airflow.password()  # where the README says the generated password is
    figures = end_to_end(airflow, receiver, db, batches=1)
    figures["idle_cpu_share_of_one_core"] = _idle_cpu(airflow, 20)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "airflow-localexecutor.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print("real scheduler figures:", json.dumps(figures))


def test_backfill_with_valid_and_invalid_params(standalone) -> None:
    airflow, server, receiver, db = standalone
    assert airflow.api("PATCH", "/dags/energywatch_backfill", json={"is_paused": False}).status_code == 200
    run = airflow.trigger("energywatch_backfill", {"feed_ids": ["af-two"], "since": "2020-01-01"}).json()
    assert succeeded(airflow, "energywatch_backfill", run) == {"backfill": "success"}
    assert store_documents(db) == 5
    bad_date = airflow.trigger("energywatch_backfill", {"feed_ids": ["af-two"], "since": "last tuesday"})
    assert bad_date.status_code == 400 and "since" in bad_date.text, bad_date.text
    bad_ids = airflow.trigger("energywatch_backfill", {"feed_ids": [], "since": "2020-01-01"})
    assert bad_ids.status_code == 400 and "feed_ids" in bad_ids.text, bad_ids.text
    unknown = airflow.trigger("energywatch_backfill", {"feed_ids": ["no-such-feed"], "since": "2020-01-01"}).json()
    final = airflow.wait_run("energywatch_backfill", unknown["dag_run_id"])
    assert final["state"] == "failed"
    log = airflow.task_log("energywatch_backfill", unknown["dag_run_id"], "backfill")
    assert "unknown feed id(s) no-such-feed" in log, log[-2000:]


def test_event_driven_ingestion_alerts_within_minutes(standalone) -> None:
    """The triggerer's NewFeedItemsTrigger sees a feed change, the Asset schedules energywatch_events for
    that feed only, and the alert follows; latency from the item appearing to its webhook, 3 items."""
    airflow, server, receiver, db = standalone
    assert airflow.api("PATCH", "/dags/energywatch_ingest", json={"is_paused": True}).status_code == 200
    assert airflow.api("PATCH", "/dags/energywatch_alerts", json={"is_paused": False}).status_code == 200
    assert airflow.api("PATCH", "/dags/energywatch_events", json={"is_paused": False}).status_code == 200
    time.sleep(30)  # the triggerer takes the new watcher up
    before = store_documents(db)
    latencies = []
    for n in range(1, 4):
        title = publish(server, receiver, "af-two", n)
        appeared = time.time()
        arrived = wait_for(lambda: any(s["title"] == title for b in receiver.bodies for s in b["stories"]), 300,
                           f"the alert for {title!r}", airflow)
        latencies.append(round(arrived - appeared, 1))
    assert store_documents(db) == before + 3
    runs = [r for r in airflow.runs("energywatch_events") if r["run_type"] == "asset_triggered"]
    assert runs, airflow.runs("energywatch_events")
    states = airflow.task_states("energywatch_events", runs[0]["dag_run_id"])
    assert states.get("plan") == "success" and states.get("ingest[0]") == "success", states
    assert sorted(receiver.stories()) == sorted(set(receiver.stories()))  # still one alert per story
    figures = {"item_to_webhook_s": latencies, "p50_s": sorted(latencies)[1], "poll_seconds": 20}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "airflow-events.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print("event-driven figures:", json.dumps(figures))
