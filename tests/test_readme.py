"""The README's operator instructions that the real-Airflow tests do not run literally, checked here."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
AIRFLOW_SECTION = README[README.index("## Run under Airflow"):README.index("## Production")]


def test_stop_login_and_ports_are_documented_as_tested() -> None:
    # the real-scheduler test stops standalone with one SIGINT to its process, as documented
    assert "pkill -INT -f 'airflow standalone'" in AIRFLOW_SECTION
    assert "simple_auth_manager_passwords.json.generated" in AIRFLOW_SECTION
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in AIRFLOW_SECTION and "AIRFLOW__API__PORT" in AIRFLOW_SECTION


@pytest.mark.parametrize("component", ["scheduler", "triggerer"])
def test_components_accept_skip_serve_logs(component: str) -> None:
    assert f"airflow {component}\n  --skip-serve-logs" in AIRFLOW_SECTION.replace("`", "") or \
        f"airflow {component} --skip-serve-logs" in AIRFLOW_SECTION.replace("`", "").replace("\n  ", " ")
    airflow = REPO / ".venv" / "bin" / "airflow"
    if not airflow.exists():
        pytest.skip("Airflow is not installed in .venv (make test installs it)")
    done = subprocess.run([str(airflow), component, "--help"], capture_output=True, text=True, timeout=120)
    assert "--skip-serve-logs" in done.stdout


def test_install_extras_named_in_the_readme_exist() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for name in ("airflow", "airflow-celery"):
        assert f".[{name}]" in AIRFLOW_SECTION and name in extras
    celery = " ".join(extras["airflow-celery"])
    assert "asyncpg" in celery and "psycopg2" in celery and "apache-airflow-providers-celery" in celery
