"""What the real-Airflow tests serve and check: local feeds and pages, a signing webhook receiver, the
README's commands, and the end-to-end scenario both executors must pass."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from test_airflow.cluster import REPO, Airflow, free_port
from conftest import article_html, rss

SECRET = "webhook-signing-secret"
DOCUMENTS = "energywatch://documents"

# one story told three times (near-duplicates on one feed), and two other stories on a second feed
_STORY_A = ["Drones attacked the gas pipeline compressor station overnight, the operator said, and NATO "
            "condemned the sabotage of critical energy infrastructure in the region."] * 3
_STORY_B = ["NATO allies agreed to send naval patrols to protect undersea power cables and gas pipelines "
            "in the Baltic Sea after a series of suspected sabotage incidents against energy infrastructure.",
            "The alliance said the attacks on electricity interconnectors were a threat to the energy "
            "security of its members, and that it would respond to any further hybrid attacks."]
_STORY_C = ["Russian missiles struck the thermal power plant and substations across Ukraine, leaving millions "
            "without electricity; NATO's secretary general called the strikes on the power grid a war crime.",
            "Ukraine's grid operator imported emergency power from Poland and Romania as engineers worked "
            "to repair the transformers damaged in the attack on the energy system."]


@dataclass
class Receiver:
    """Webhook deliveries: body, signature check and delivery time of each."""

    bodies: list[dict] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    feeds: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # what each feed lists now

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(request.headers.get("X-Energywatch-Signature", ""), expected):
                self.bad_signatures += 1
            self.bodies.append(json.loads(body))
            self.arrived.append(time.time())
        return Response("ok")

    def stories(self) -> list[tuple[str, str]]:
        """(rule, story) of every alert received, repeats included."""
        with self.lock:
            return [(b["rule"], s["story_id"]) for b in self.bodies for s in b["stories"]]


def _slow(body: str, delay: float):
    def handler(request: Request) -> Response:
        time.sleep(delay)
        return Response(body, content_type="text/html")

    return handler


def serve(server: HTTPServer, tmp: Path, *, page_delay: float = 0.0) -> tuple[Path, Path, Receiver]:
    """Feeds, pages, webhook and alert rules for the scenario; the feed list and rules files.

    page_delay holds each page back, so that a task lasts long enough for others to start beside it."""
    receiver = Receiver()
    server.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
    feeds = []
    for feed_id, stories in (("af-one", [("a", _STORY_A)] * 3), ("af-two", [("b", _STORY_B), ("c", _STORY_C)])):
        items = []
        for i, (name, paragraphs) in enumerate(stories):
            path = f"/{feed_id}/{i}"
            page = article_html(f"Attack on energy infrastructure {name}", [f"Report {feed_id} {i}."] + paragraphs)
            server.expect_request(path).respond_with_handler(_slow(page, page_delay))
            items.append({"title": f"Attack on energy infrastructure {name}", "link": server.url_for(path),
                          "guid": f"{feed_id}-{i}"})
        receiver.feeds[feed_id] = items
        server.expect_request(f"/{feed_id}.rss").respond_with_handler(
            lambda request, feed_id=feed_id: Response(rss(receiver.feeds[feed_id]), content_type="application/rss+xml"))
        feeds.append(f"  - id: {feed_id}\n    name: {feed_id}\n    url: {server.url_for(f'/{feed_id}.rss')}\n"
                     "    language: en\n    country: GB\n")
    feeds_file = tmp / "feeds.yaml"
    feeds_file.write_text("feeds:\n" + "".join(feeds), encoding="utf-8")
    rules = tmp / "alerts.yaml"
    rules.write_text("channels:\n  hook: {type: webhook, url_env: ENERGYWATCH_WEBHOOK_URL, "
                     "secret_env: ENERGYWATCH_WEBHOOK_SECRET}\n"
                     "rules:\n  - {name: nato-core, labels: [core], organizations: [NATO], channels: [hook]}\n",
                     encoding="utf-8")
    return feeds_file, rules, receiver


def publish(server: HTTPServer, receiver: Receiver, feed_id: str, n: int) -> str:
    """A new story at the top of a feed, with its page; its title."""
    import random

    title = f"Sabotage of the gas interconnector {n}"
    words = ("NATO said saboteurs damaged the gas interconnector and its compressor station cutting supplies to "
             "towns while the alliance will protect critical energy infrastructure investigators found explosives "
             "at a pipeline valve and energy ministers of the allies meet to discuss attacks on the energy system "
             "and gas supply security").split()
    # the words shuffled anew for each n: another story for the near-duplicate grouping, which would
    # otherwise fold every item into the first one's story (and alert once)
    random.Random(n).shuffle(words)
    paragraphs = [" ".join(words[:25]) + ".", " ".join(words[25:]) + "."]
    path = f"/{feed_id}/new-{n}"
    server.expect_request(path).respond_with_data(article_html(title, paragraphs), content_type="text/html")
    with receiver.lock:
        receiver.feeds[feed_id].insert(0, {"title": title, "link": server.url_for(path), "guid": f"{feed_id}-new-{n}"})
    return title


def readme_airflow_commands() -> tuple[dict[str, str], list[list[str]]]:
    """The README's "Run under Airflow" block: its exported settings and its commands, as a user runs them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Run under Airflow"):text.index("## Production")]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")].replace("\\\n", " ")
    exports: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in filter(None, (ln.strip() for ln in block.splitlines())):
        words = shlex.split(line.replace("$PWD", str(REPO)).replace("$PATH", os.environ.get("PATH", "")),
                            comments=True)
        if words[0] == "export":
            exports.update(w.split("=", 1) for w in words[1:])
        else:
            commands.append(words)
    return exports, commands


def base_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without its Airflow and energywatch settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ENERGYWATCH_", "_AIRFLOW"))}
    env.update(settings)
    return env


def energywatch_env(home: Path, feeds: Path, rules: Path, server: HTTPServer, store: str) -> dict[str, str]:
    """The settings the DAGs read, with the webhook given as an Airflow connection in URI form."""
    hook = server.url_for("/hook").replace("http://", f"http://:{SECRET}@")
    return {"ENERGYWATCH_STORE": store, "ENERGYWATCH_FEEDS_FILE": str(feeds), "ENERGYWATCH_ALERTS_FILE": str(rules),
            "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "ENERGYWATCH_WORKERS": "2",
            "AIRFLOW_CONN_ENERGYWATCH_WEBHOOK": hook, "ENERGYWATCH_DEFAULT_INTERVAL_MINUTES": "10"}


def store_documents(db: Path) -> int:
    """Documents in the SQLite store, read without opening it for writing."""
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        try:
            return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def wait_for(predicate, timeout: float, what: str, airflow: Airflow) -> float:
    """Poll until the predicate holds; the time it held at."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s\n{airflow.logs()}")


def free_ports(n: int) -> list[int]:
    """n distinct free ports."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def succeeded(airflow: Airflow, dag_id: str, run: dict) -> dict[str, str | None]:
    final = airflow.wait_run(dag_id, run["dag_run_id"])
    states = airflow.task_states(dag_id, run["dag_run_id"])
    assert final["state"] == "success", (states, airflow.logs())
    return states


def end_to_end(airflow: Airflow, receiver: Receiver, db: Path, *, batches: int) -> dict[str, object]:
    """The scenario both executors must pass; the figures it measured.

    Unpausing creates a scheduled run, which stores every document and emits the Asset; the alerts DAG
    sends one alert per (rule, story); a run triggered while the DAG was paused finds nothing new and
    announces nothing; a third run finds nothing due.
    """
    manual = airflow.trigger("energywatch_ingest", {"due_only": False}).json()
    assert airflow.api("PATCH", "/dags/energywatch_alerts", json={"is_paused": False}).status_code == 200
    unpaused = time.time()
    assert airflow.api("PATCH", "/dags/energywatch_ingest", json={"is_paused": False}).status_code == 200
    stored_at = wait_for(lambda: store_documents(db) == 5, 300, "5 documents stored", airflow)
    alerted_at = wait_for(lambda: len(receiver.stories()) >= 3, 300, "3 alerts delivered", airflow)
    runs = airflow.runs("energywatch_ingest")
    assert [r["run_type"] for r in runs] == ["scheduled", "manual"], runs
    states = succeeded(airflow, "energywatch_ingest", runs[0])
    mapped = {f"ingest[{i}]": "success" for i in range(batches)}
    assert states == {"plan": "success", **mapped, "record": "success", "announce": "success"}, states

    # the Asset event carries the run's counts, and started the alerts DAG
    events = airflow.asset_events(DOCUMENTS)
    assert len(events) == 1 and events[0]["extra"]["documents_stored"] == 5, events
    assert events[0]["extra"]["batches"] == batches and events[0]["source_dag_id"] == "energywatch_ingest"
    alerts_runs = airflow.runs("energywatch_alerts")
    assert len(alerts_runs) == 1
    assert succeeded(airflow, "energywatch_alerts", alerts_runs[0]) == {"deliver": "success"}
    # exactly one alert per (rule, story): three stories, the first told by three pages
    assert sorted(receiver.stories()) == sorted(set(receiver.stories())) and len(receiver.stories()) == 3
    assert receiver.bad_signatures == 0
    assert sorted(s["copies"] for b in receiver.bodies for s in b["stories"]) == [1, 1, 3]

    # the manual run polled every feed again: nothing new, so nothing doubled, nothing announced
    states = succeeded(airflow, "energywatch_ingest", manual)
    assert states == {"plan": "success", **mapped, "record": "success", "announce": "skipped"}, states
    # once more, as the schedule would (nothing due): the mapped ingest has nothing to do
    again = airflow.trigger("energywatch_ingest").json()
    states = succeeded(airflow, "energywatch_ingest", again)
    assert states == {"plan": "success", "ingest": "skipped", "record": "success", "announce": "skipped"}, states
    assert store_documents(db) == 5 and len(airflow.asset_events(DOCUMENTS)) == 1
    assert len(airflow.runs("energywatch_alerts")) == 1 and len(receiver.stories()) == 3

    tis = airflow.task_instances("energywatch_ingest", runs[0]["dag_run_id"])
    return {
        "unpause_to_stored_s": round(stored_at - unpaused, 1),
        "unpause_to_webhook_s": round(alerted_at - unpaused, 1),
        "record_task_duration_s": next(t["duration"] for t in tis if t["task_id"] == "record"),
        "ingest_hosts": sorted(t["hostname"] for t in tis if t["task_id"] == "ingest"),
    }
