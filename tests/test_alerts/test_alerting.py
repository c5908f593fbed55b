"""Alerting end to end with real local receivers: webhook and Slack over HTTP, e-mail over SMTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from conftest import article_html, rss
from energywatch.alerts.outbox import deliver
from energywatch.alerts.rules import alerts_for, load_rules
from energywatch.cli import app
from energywatch.models import Document, Entities, Evidence, Feed, Relevance
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
STORY = ("NATO said on Tuesday that drones attacked the TurkStream gas pipeline compressor station near Anapa, "
         "and that the alliance would step up the protection of critical energy infrastructure. The operator "
         "said supplies to Hungary and Serbia were interrupted for six hours after the sabotage, and Russia "
         "accused Ukraine of the attack on the energy facility.")
COPY = STORY.replace("on Tuesday", "on Tuesday evening") + " Officials in Budapest called for an emergency meeting."
HOSTILE = '<img src=x onerror=alert(1)> <!channel> *bold* & <https://evil.example|click me>'


def rules_file(tmp_path: Path, url: str, *, extra_rule: str = "", channel: str = "hook") -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(f"""
channels:
  hook: {{type: webhook, url: "{url}", secret_env: TEST_HOOK_SECRET}}
  slack: {{type: slack, url: "{url}"}}
rules:
  - name: nato-core
    labels: [core]
    organizations: [NATO]
    channels: [{channel}]
{extra_rule}
""", encoding="utf-8")
    return path


def doc(n: int, title: str = "Drones hit TurkStream", story: str | None = None) -> Document:
    return Document(
        id=f"d{n}", url=f"https://news{n}.example/a", canonical_url=f"https://news{n}.example/a",
        domain=f"news{n}.example", feed_id="f", source=f"Source {n}", title=title, text=STORY, language="en",
        fetched_at=T0, story_id=story or f"d{n}",
        relevance=Relevance(score=0.93, label="core", themes=("pipelines", "nato"),
                            evidence=(Evidence(concept="pipeline", axis="energy", term="pipeline",
                                               sentence=f"Evidence {title}"),)),
        entities=Entities(organizations=("NATO",), infrastructure=("TurkStream",)),
    )


def receiver(server: HTTPServer, path: str = "/hook", fail_first: int = 0) -> list[dict]:
    got: list[dict] = []
    calls = {"n": 0}

    def handle(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return Response("down", status=503)
        got.append({"body": request.get_data(), "headers": dict(request.headers)})
        return Response("ok")

    server.expect_request(path, method="POST").respond_with_handler(handle)
    return got


def test_rules_check_reports_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("""
channels:
  hook: {type: webhook, url: "http://x.example/"}
rules:
  - {name: a, lables: [core], channels: [hook]}
  - {name: b, min_score: 1.5, channels: [hook]}
  - {name: c, channels: [pager]}
  - {name: d, query: "(gas OR lng", channels: [hook]}
""", encoding="utf-8")
    result = CliRunner().invoke(app, ["alerts", "check", "--rules", str(bad)])
    assert result.exit_code == 2
    assert "rule 'a': lables: unknown field" in result.output
    assert "rule 'b': min_score" in result.output and "less than or equal to 1" in result.output
    assert "unknown channel(s) pager" in result.output
    assert "rule 'd': cannot read the search '(gas OR lng': the '(' at character 1 is never closed" \
        in result.output
    default = CliRunner().invoke(app, ["alerts", "check"])
    assert default.exit_code == 0 and "nato-core" in default.output


def test_one_alert_per_story_signed_and_escaped(tmp_path: Path, httpserver: HTTPServer,
                                                monkeypatch: pytest.MonkeyPatch, settings) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", "s3cret")
    got = receiver(httpserver)
    for path, text in (("/orig", STORY), ("/copy", COPY)):
        httpserver.expect_request(path).respond_with_data(
            article_html(HOSTILE if path == "/orig" else "TurkStream compressor station attacked", [text]),
            content_type="text/html")
    httpserver.expect_request("/a.rss").respond_with_data(rss([{"title": "a", "link": httpserver.url_for("/orig")}]),
                                                          content_type="application/rss+xml")
    httpserver.expect_request("/b.rss").respond_with_data(rss([{"title": "b", "link": httpserver.url_for("/copy")}]),
                                                          content_type="application/rss+xml")
    cfg = settings.model_copy(update={"alerts_file": rules_file(tmp_path, httpserver.url_for("/hook"))})
    store = SQLiteStore(tmp_path / "a.db")
    try:
        first = run(cfg, [Feed(id="a", name="A", url=httpserver.url_for("/a.rss"))], store)
        second = run(cfg, [Feed(id="b", name="B", url=httpserver.url_for("/b.rss"))], store)
        assert first.alerts_queued == 1 and second.alerts_queued == 1  # the copy's entry is ignored in the outbox
        rules = load_rules(cfg.alerts_file)
        report = deliver(store, rules, datetime.now(timezone.utc) + timedelta(seconds=5))
        assert report.alerts_sent == 1 and len(got) == 1
        assert deliver(store, rules, datetime.now(timezone.utc) + timedelta(minutes=5)).alerts_sent == 0
    finally:
        store.close()
    body, headers = got[0]["body"], got[0]["headers"]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Energywatch-Signature"], expected)
    story = json.loads(body)["stories"][0]
    assert story["title"] == HOSTILE and story["copies"] == 2  # JSON carries the text as data, exactly


def test_slack_escapes_control_characters(tmp_path: Path, httpserver: HTTPServer) -> None:
    got = receiver(httpserver, "/slack")
    rules = load_rules(rules_file(tmp_path, httpserver.url_for("/slack"), channel="slack"))
    store = SQLiteStore(tmp_path / "s.db")
    try:
        hostile = doc(1, title=HOSTILE)
        store.put_documents([hostile], alerts_for(rules, hostile, T0))
        assert deliver(store, rules, T0 + timedelta(seconds=1)).alerts_sent == 1
    finally:
        store.close()
    body = json.loads(got[0]["body"])
    # mrkdwn is what Slack parses for links and mentions; plain_text (the header) is shown as typed
    text = json.dumps([b["text"]["text"] for b in body["blocks"] if b.get("text", {}).get("type") == "mrkdwn"]
                      + [body["text"]])
    assert "<!channel>" not in text and "<https://evil.example|click me>" not in text
    assert "&lt;!channel&gt;" in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<https://news1.example/a|" in text  # the article link itself is a real link


def test_failing_receiver_delays_never_loses(tmp_path: Path, httpserver: HTTPServer) -> None:
    got = receiver(httpserver, fail_first=2)
    rules = load_rules(rules_file(tmp_path, httpserver.url_for("/hook")))
    store = SQLiteStore(tmp_path / "f.db")
    try:
        d = doc(1)
        store.put_documents([d], alerts_for(rules, d, T0))
        import os
        os.environ["TEST_HOOK_SECRET"] = "x"
        first = deliver(store, rules, T0)
        assert first.alerts_failed == 1 and "HTTP 503" in first.errors[0]
        assert deliver(store, rules, T0 + timedelta(seconds=30)).alerts_sent == 0  # backing off
        second = deliver(store, rules, T0 + timedelta(minutes=1, seconds=1))
        assert second.alerts_failed == 1
        third = deliver(store, rules, T0 + timedelta(minutes=10))
        assert third.alerts_sent == 1 and len(got) == 1
        history = store.alert_history()
        assert history[0].status == "sent" and history[0].attempts == 3
        assert deliver(store, rules, T0 + timedelta(hours=2)).alerts_sent == 0
    finally:
        store.close()


def test_redirecting_receiver_is_not_delivered_and_retries_carry_one_delivery_id(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", "x")
    httpserver.expect_request("/moved", method="POST").respond_with_data(
        "", status=302, headers={"Location": "https://hooks.example/new"})
    store = SQLiteStore(tmp_path / "r.db")
    try:
        rules = load_rules(rules_file(tmp_path, httpserver.url_for("/moved")))
        d = doc(1)
        store.put_documents([d], alerts_for(rules, d, T0))
        moved = deliver(store, rules, T0)
        assert moved.alerts_sent == 0 and moved.alerts_failed == 1
        assert "HTTP 302 (Location: https://hooks.example/new); nothing was delivered" in moved.errors[0]
        assert store.alert_history()[0].status != "sent"
    finally:
        store.close()
    got = receiver(httpserver, "/flaky", fail_first=1)
    store = SQLiteStore(tmp_path / "f2.db")
    try:
        rules = load_rules(rules_file(tmp_path, httpserver.url_for("/flaky")))
        d = doc(2)
        store.put_documents([d], alerts_for(rules, d, T0))
        deliver(store, rules, T0)
        assert deliver(store, rules, T0 + timedelta(minutes=10)).alerts_sent == 1
        ids = [r.headers.get("X-Energywatch-Delivery") for r, _ in httpserver.log if r.path == "/flaky"]
        assert len(ids) == 2 and ids[0] and ids[0] == ids[1]  # the failed attempt and its retry
        assert json.loads(got[0]["body"])["delivery_id"] == ids[0]
    finally:
        store.close()


def test_digest_groups_stories_and_quiet_period_holds(tmp_path: Path, httpserver: HTTPServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", "x")
    got = receiver(httpserver)
    extra = """  - name: digest
    labels: [core]
    themes: [pipelines]
    channels: [hook]
    mode: digest
    digest_minutes: 60
  - name: quiet
    labels: [core]
    channels: [hook]
    quiet_minutes: 30
"""
    rules = load_rules(rules_file(tmp_path, httpserver.url_for("/hook"), extra_rule=extra))
    rules = rules.model_copy(update={"rules": [r for r in rules.rules if r.name != "nato-core"]})
    store = SQLiteStore(tmp_path / "d.db")
    try:
        for n, at in ((1, T0), (2, T0 + timedelta(minutes=5))):
            d = doc(n, title=f"Story {n}")
            store.put_documents([d], alerts_for(rules, d, at))
        # quiet rule: the first story goes at once, the second waits for the quiet period to end
        r1 = deliver(store, rules, T0 + timedelta(minutes=6))
        assert r1.alerts_sent == 2 and r1.messages_sent == 1 and r1.alerts_held == 0  # quiet: no earlier send
        store.put_documents([doc(3, title="Story 3")], alerts_for(rules, doc(3, title="Story 3"), T0 + timedelta(minutes=7)))
        r2 = deliver(store, rules, T0 + timedelta(minutes=8))
        assert r2.alerts_sent == 0 and r2.alerts_held == 1
        r3 = deliver(store, rules, T0 + timedelta(minutes=37))
        assert r3.alerts_sent == 1
        # digest: nothing before the hour ends, then one message with all stories
        r4 = deliver(store, rules, T0 + timedelta(minutes=59))
        assert r4.alerts_sent == 0
        r5 = deliver(store, rules, T0 + timedelta(minutes=61))
        assert r5.messages_sent == 1 and r5.alerts_sent == 3
    finally:
        store.close()
    digest = json.loads(got[-1]["body"])
    assert digest["rule"] == "digest" and digest["count"] == 3
    assert [s["title"] for s in digest["stories"]] == ["Story 1", "Story 2", "Story 3"]


def test_a_burst_of_instant_alerts_is_batched_after_the_first(tmp_path: Path, httpserver: HTTPServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", "x")
    got = receiver(httpserver)
    rules = load_rules(rules_file(tmp_path, httpserver.url_for("/hook")))
    assert rules.rule("nato-core").batch_seconds == 10
    store = SQLiteStore(tmp_path / "b.db")
    try:
        first = doc(1, title="Story 1")
        store.put_documents([first], alerts_for(rules, first, T0))
        # the first goes at once, alone
        assert deliver(store, rules, T0 + timedelta(seconds=1)).messages_sent == 1
        # 20 related stories within the next 2.5 s wait for the window after that send, then go as one
        for n in range(2, 22):
            d = doc(n, title=f"Story {n}")
            at = T0 + timedelta(seconds=1 + n / 8)
            store.put_documents([d], alerts_for(rules, d, at))
            held = deliver(store, rules, at)
            assert held.messages_sent == 0 and held.alerts_held >= 1
        batch = deliver(store, rules, T0 + timedelta(seconds=11))
        assert (batch.messages_sent, batch.alerts_sent) == (1, 20)
        # after a quiet window the next one goes at once again
        late = doc(30, title="Story 30")
        store.put_documents([late], alerts_for(rules, late, T0 + timedelta(seconds=40)))
        assert deliver(store, rules, T0 + timedelta(seconds=40)).alerts_sent == 1
    finally:
        store.close()
    assert [json.loads(g["body"])["count"] for g in got] == [1, 20, 1]


def test_email_over_real_smtp_with_escaped_html(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    received: list = []

    class Keep(MessageHandler):
        def handle_message(self, message) -> None:  # noqa: ANN001
            received.append(message)

    import socket

    with socket.socket() as probe:  # aiosmtpd's start-up check connects to the port it was given
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        path = tmp_path / "mail.yaml"
        path.write_text(f"""
channels:
  mail: {{type: email, host: 127.0.0.1, port: {port}, starttls: false,
          sender: energywatch@test.local, recipients: [analyst@test.local]}}
rules:
  - {{name: nato-core, labels: [core], organizations: [NATO], channels: [mail]}}
""", encoding="utf-8")
        rules = load_rules(path)
        store = SQLiteStore(tmp_path / "m.db")
        try:
            hostile = doc(1, title=HOSTILE)
            store.put_documents([hostile], alerts_for(rules, hostile, T0))
            assert deliver(store, rules, T0 + timedelta(seconds=1)).alerts_sent == 1
        finally:
            store.close()
    finally:
        controller.stop()
    assert len(received) == 1
    mail = message_from_bytes(received[0].as_bytes(), policy=email_policy)
    plain = mail.get_body(("plain",)).get_content()
    html_part = mail.get_body(("html",)).get_content()
    assert HOSTILE in plain and "https://news1.example/a" in plain
    assert "<img src=x" not in html_part and "&lt;img src=x onerror=alert(1)&gt;" in html_part


def test_killed_between_store_and_send_still_sends_once(tmp_path: Path, httpserver: HTTPServer) -> None:
    got = receiver(httpserver)
    httpserver.expect_request("/p").respond_with_data(article_html("Drones hit TurkStream", [STORY]),
                                                      content_type="text/html")
    httpserver.expect_request("/feed").respond_with_data(rss([{"title": "p", "link": httpserver.url_for("/p")}]),
                                                         content_type="application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {{id: k, name: K, url: '{httpserver.url_for('/feed')}'}}\n", encoding="utf-8")
    env = {"ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "ENERGYWATCH_STORE": f"sqlite:///{tmp_path / 'k.db'}",
           "ENERGYWATCH_FEEDS_FILE": str(feeds), "ENERGYWATCH_ALERTS_FILE": str(
               rules_file(tmp_path, httpserver.url_for("/hook"))), "TEST_HOOK_SECRET": "k", "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "energywatch"]
    # the ingest process ends after storing (as a crash right after the store step would): nothing sent yet
    assert subprocess.run([*cli, "run", "--json"], env=env, capture_output=True, timeout=120).returncode == 0
    assert got == []
    sent = subprocess.run([*cli, "alerts", "send"], env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    again = subprocess.run([*cli, "alerts", "send"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and len(got) == 1
    history = subprocess.run([*cli, "alerts", "history", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(history.stdout)[0]["status"] == "sent"


def test_two_alerts_send_at_once_deliver_each_alert_once(tmp_path: Path, httpserver: HTTPServer) -> None:
    """Two `energywatch alerts send` processes started together against a slow receiver."""
    import time

    got: list[str] = []

    def slow(request: Request) -> Response:
        time.sleep(0.3)
        got.extend(s["story_id"] for s in json.loads(request.get_data())["stories"])
        return Response("ok")

    httpserver.expect_request("/slow", method="POST").respond_with_handler(slow)
    rules_path = rules_file(tmp_path, httpserver.url_for("/slow"))
    rules = load_rules(rules_path)
    store = SQLiteStore(tmp_path / "two.db")
    now = datetime.now(timezone.utc)
    for n in range(8):
        d = doc(n, title=f"Drones hit pipeline {n}")
        store.put_documents([d], alerts_for(rules, d, now - timedelta(minutes=1)))
    store.close()
    env = {"ENERGYWATCH_STORE": f"sqlite:///{tmp_path / 'two.db'}", "ENERGYWATCH_ALERTS_FILE": str(rules_path),
           "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true", "TEST_HOOK_SECRET": "k", "PATH": "/usr/bin:/bin"}
    senders = [subprocess.Popen([sys.executable, "-m", "energywatch", "alerts", "send"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [s.communicate(timeout=120)[0].decode() for s in senders]
    assert all(s.returncode == 0 for s in senders), outputs
    assert sorted(got) == [f"d{n}" for n in range(8)], outputs  # every story once, none twice
