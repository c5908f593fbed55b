"""The docker stack and the Kibana saved objects: validated without running them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from energywatch.cli import app
from energywatch.kibana import saved_objects, to_ndjson
from energywatch.store.es_mapping import document_mappings

REPO = Path(__file__).resolve().parents[1]
NDJSON = REPO / "docker" / "kibana" / "energywatch.ndjson"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor Debian's docker-compose is installed (make test installs it)")
    result = subprocess.run([*command, "-f", str(REPO / "docker" / "docker-compose.yml"),
                             "--env-file", str(REPO / "docker" / ".env.example"), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = subprocess.run([*command, "-f", str(REPO / "docker" / "docker-compose.yml"),
                             "--env-file", str(REPO / "docker" / ".env.example"), "config"],
                            capture_output=True, text=True, timeout=60).stdout
    for service in ("elasticsearch:", "kibana:", "postgres:", "airflow-apiserver:", "airflow-scheduler:",
                    "airflow-dag-processor:", "airflow-triggerer:"):
        assert service in config
    assert config.count("healthcheck:") >= 7 and "change-me-elastic" in config


def test_ndjson_is_in_sync_and_consistent() -> None:
    assert NDJSON.read_text(encoding="utf-8") == to_ndjson(saved_objects()), \
        "docker/kibana/energywatch.ndjson is stale: run `energywatch kibana export docker/kibana/energywatch.ndjson`"
    objects = [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines()]
    ids = {(o["type"], o["id"]) for o in objects}
    titles = {o["attributes"]["title"] for o in objects}
    assert {"Core energy-security stories", "NATO energy"} <= titles
    mapped = set(document_mappings()["properties"])
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{obj['id']} references a missing {ref}"
        source = obj["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if source:
            json.loads(source)
        if obj["type"] == "visualization":
            for agg in json.loads(obj["attributes"]["visState"])["aggs"]:
                field = agg["params"].get("field")
                assert field is None or field.split(".")[0] in mapped, field
    data_view = next(o for o in objects if o["type"] == "index-pattern")
    assert data_view["attributes"]["timeFieldName"] == "dated_at"
    dashboard = next(o for o in objects if o["type"] == "dashboard")
    assert len(json.loads(dashboard["attributes"]["panelsJSON"])) == len(dashboard["references"]) == 6


def test_kibana_setup_posts_the_documented_import(httpserver: HTTPServer) -> None:
    seen: dict[str, object] = {}

    def receive(request: Request) -> Response:
        seen["xsrf"] = request.headers.get("kbn-xsrf")
        seen["overwrite"] = request.args.get("overwrite")
        seen["auth"] = request.authorization.username if request.authorization else None
        upload = request.files["file"]
        lines = upload.read().decode("utf-8").splitlines()
        seen["count"] = len(lines)
        results = [{"type": json.loads(l)["type"], "id": json.loads(l)["id"],
                    "meta": {"title": json.loads(l)["attributes"]["title"]}} for l in lines]
        return Response(json.dumps({"success": True, "successCount": len(results), "successResults": results}),
                        content_type="application/json")

    httpserver.expect_request("/s/ops/api/saved_objects/_import", method="POST").respond_with_handler(receive)
    result = CliRunner().invoke(app, ["kibana", "setup", "--kibana-url", httpserver.url_for("/"), "--space", "ops",
                                      "--username", "elastic", "--password", "secret"])
    assert result.exit_code == 0, result.output
    assert seen == {"xsrf": "energywatch", "overwrite": "true", "auth": "elastic", "count": 10}
    assert "10 object(s) imported" in result.output and "NATO energy" in result.output
    assert "secret" not in result.output


def test_kibana_setup_reports_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/saved_objects/_import").respond_with_json(
        {"success": False, "successCount": 0,
         "errors": [{"type": "dashboard", "id": "energywatch-overview", "error": {"type": "missing_references"}}]})
    result = CliRunner().invoke(app, ["kibana", "setup", "--kibana-url", httpserver.url_for("/")])
    assert result.exit_code == 1 and "missing_references" in result.output
    httpserver.clear()
    httpserver.expect_request("/api/saved_objects/_import").respond_with_data("no", status=401)
    denied = CliRunner().invoke(app, ["kibana", "setup", "--kibana-url", httpserver.url_for("/")])
    assert denied.exit_code == 2 and "credentials" in denied.output


def test_airflow_services_share_what_tasks_need() -> None:
    import yaml

    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor Debian's docker-compose is installed (make test installs it)")
    rendered = subprocess.run([*command, "-f", str(REPO / "docker" / "docker-compose.yml"),
                               "--env-file", str(REPO / "docker" / ".env.example"), "config"],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    services = yaml.safe_load(rendered)["services"]
    airflow = {name: s for name, s in services.items() if name.startswith("airflow-")}
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(airflow)
    envs = {name: s["environment"] for name, s in airflow.items()}
    # one JWT secret for all: a scheduler with its own fails every task with "Invalid auth token"
    assert len({e["AIRFLOW__API_AUTH__JWT_SECRET"] for e in envs.values()}) == 1
    assert all(e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
               for e in envs.values())
    # the alerts file is mounted with the feed list, and exists in the repository
    for env in envs.values():
        assert env["ENERGYWATCH_ALERTS_FILE"] == "/opt/energywatch/config/alerts.yaml"
        assert env["AIRFLOW_CONN_ENERGYWATCH_WEBHOOK"].startswith("https://")
    assert (REPO / "config" / "alerts.yaml").is_file()
    # health checks that can pass: the scheduler's health server is enabled where it is asked
    scheduler = airflow["airflow-scheduler"]
    assert envs["airflow-scheduler"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "8974/health" in " ".join(scheduler["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in " ".join(airflow["airflow-apiserver"]["healthcheck"]["test"])
