"""The distributed engine users grow into: PostgreSQL metadata, CeleryExecutor over Redis, two workers.

PostgreSQL and Redis are Debian's (`make test` installs them); each is started here on a free
loopback port in a temporary directory and stopped at the end. Without them the test is skipped and
says why.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from test_airflow.cluster import Airflow, port_bound
from test_airflow.scenario import base_env, end_to_end, energywatch_env, free_ports, serve

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# each worker names itself in the task instances it runs, so the test sees where mapped tasks ran
_HOSTNAME_MODULE = "import os\n\ndef name():\n    return os.environ['ENERGYWATCH_TEST_WORKER']\n"


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_db_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the postgres user for it
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def celery_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Airflow, object, Path]]:
    pg_bin = _postgres_bin()
    if pg_bin is None or shutil.which("redis-server") is None:
        pytest.skip("PostgreSQL and redis-server (Debian packages postgresql, redis-server) are not installed; "
                    "`make test` installs them where apt-get works")
    home = tmp_path_factory.mktemp("airflow-celery")
    pg_port, redis_port, api_port = free_ports(3)
    # the data directory must be reachable by the postgres user, which pytest's 0700 temp dirs are not
    pg_data = Path(tempfile.mkdtemp(prefix="energywatch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(pg_data, "postgres", "postgres")
    subprocess.run(_as_db_user([str(pg_bin / "initdb"), "-D", str(pg_data), "-A", "trust", "-U", "airflow",
                                "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
    subprocess.run(_as_db_user([str(pg_bin / "pg_ctl"), "-D", str(pg_data), "-w", "-l", str(pg_data / "log"),
                                "-o", f"-p {pg_port} -k {pg_data} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    server = HTTPServer(threaded=True)
    airflow: Airflow | None = None
    problems: list[str] = []
    try:
        subprocess.run(_as_db_user([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "airflow",
                                    "airflow"]), check=True, capture_output=True, timeout=60)
        server.start()
        # each ingest task takes a few seconds, as real pages do: the second batch is queued while the
        # first runs, and the idle worker takes it
        feeds, rules, receiver = serve(server, home, page_delay=3.0)
        db = home / "energywatch.db"
        (home / "pythonpath").mkdir()
        (home / "pythonpath" / "workerhost.py").write_text(_HOSTNAME_MODULE, encoding="utf-8")
        repo = Path(__file__).resolve().parents[2]
        settings = {
            "PATH": f"{repo / '.venv' / 'bin'}:{os.environ.get('PATH', '')}", "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(home / "pythonpath"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://airflow@127.0.0.1:{pg_port}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@127.0.0.1:{pg_port}/airflow",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # one secret for every component: a scheduler signing with another fails each task ("Invalid auth token")
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "workerhost.name", "ENERGYWATCH_TEST_WORKER": "control",
            "ENERGYWATCH_FEEDS_PER_TASK": "1",  # two feeds, two mapped ingest tasks
            **energywatch_env(home, feeds, rules, server, f"sqlite:///{db}"),
        }
        airflow = Airflow(home=home, env=base_env(settings), api_port=api_port, ports=[api_port, redis_port])
        airflow.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"])
        airflow.cli("db", "migrate")
        airflow.cli("pools", "set", "energywatch_fetch", "4", "energywatch page fetching")
        airflow.start("api-server", ["airflow", "api-server"])
        airflow.start("scheduler", ["airflow", "scheduler", "--skip-serve-logs"])
        airflow.start("dag-processor", ["airflow", "dag-processor"])
        airflow.start("triggerer", ["airflow", "triggerer", "--skip-serve-logs"])
        for name in ("worker-1", "worker-2"):
            airflow.start(name, ["airflow", "celery", "worker", "--skip-serve-logs", "--celery-hostname",
                                 f"{name}@%h", "--concurrency", "1"], env={"ENERGYWATCH_TEST_WORKER": name})
        airflow.wait_healthy()
        for dag_id in ("energywatch_ingest", "energywatch_alerts"):
            airflow.wait_dag(dag_id)
        yield airflow, receiver, db
    finally:
        if airflow is not None:
            problems = airflow.stop()
        server.stop()
        subprocess.run(_as_db_user([str(pg_bin / "pg_ctl"), "-D", str(pg_data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(pg_data, ignore_errors=True)
        if port_bound(pg_port):
            problems.append(f"PostgreSQL still listens on {pg_port}")
    assert not problems, problems


def test_celery_workers_share_the_work_and_the_store(celery_airflow) -> None:
    airflow, receiver, db = celery_airflow
    figures = end_to_end(airflow, receiver, db, batches=2)
    # the two mapped ingest tasks ran on the two workers, and agreed on feed state through the store
    assert figures["ingest_hosts"] == ["worker-1", "worker-2"], figures
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "airflow-celery.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print("celery figures:", json.dumps(figures))
    assert [c.name for c in airflow.components if c.process.poll() is not None] == []
