"""The worker pool starts whatever the parent's `__main__` is: the failure that broke every Airflow task."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.queues
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from conftest import REPO, rss
from energywatch.config import Settings, load_feeds
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore
from test_pipeline import serve_articles

# The parent process's __main__, in each form users run us under. Each refuses to be imported again,
# as the `airflow` console script does inside a task (the supervisor's environment makes `import
# airflow` raise there), so a worker that re-runs __main__ dies and nothing gets extracted.
_RUN = """
import json, sys
from pathlib import Path
from energywatch.config import Settings, load_feeds
from energywatch.pipeline import run
from energywatch.store.sqlite import SQLiteStore

def main():
    settings = Settings(store="sqlite:///" + sys.argv[2], allow_private_addresses=True, workers=2)
    store = SQLiteStore(sys.argv[2])
    try:
        summary = run(settings, load_feeds(Path(sys.argv[1])), store)
    finally:
        store.close()
    print(json.dumps({"stored": summary.documents_stored, "failures": [f.reason for f in summary.failures]}))
"""
_GUARD = "if __name__ != '__main__':\n    raise RuntimeError('this program must never be imported again: ' + __name__)\n"
_CALL = "\nif __name__ == '__main__':\n    main()\n"


def _write_feeds(httpserver: HTTPServer, tmp_path: Path, prefix: str) -> Path:
    items = serve_articles(httpserver, 4, prefix=prefix)
    httpserver.expect_request(f"/{prefix}.rss").respond_with_data(rss(items), content_type="application/rss+xml")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - id: {prefix}\n    name: Local\n    url: {httpserver.url_for(f'/{prefix}.rss')}\n"
                     "    language: en\n", encoding="utf-8")
    return feeds


@pytest.mark.parametrize("form", ["console-script", "python -m"])
def test_pipeline_runs_where_main_cannot_be_imported_again(form: str, httpserver: HTTPServer,
                                                           tmp_path: Path) -> None:
    feeds = _write_feeds(httpserver, tmp_path, prefix=form.replace(" ", "").replace("-", ""))
    db = tmp_path / "store.db"
    if form == "console-script":
        # like the scripts pip writes into bin/: no .py suffix, a shebang, run by path
        script = tmp_path / "bin" / "energywatch-task"
        script.parent.mkdir()
        script.write_text(f"#!{sys.executable}\n{_GUARD}{_RUN}{_CALL}", encoding="utf-8")
        script.chmod(0o755)
        cmd, env_path = [str(script)], ""
    else:
        package = tmp_path / "pkg" / "taskrunner"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("", encoding="utf-8")
        (package / "task.py").write_text(_GUARD + _RUN + _CALL, encoding="utf-8")
        cmd, env_path = [sys.executable, "-m", "taskrunner.task"], str(tmp_path / "pkg")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": env_path, "HOME": str(tmp_path)}
    done = subprocess.run([*cmd, str(feeds), str(db)], capture_output=True, text=True, timeout=180, env=env,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"stored": 4, "failures": []}, done.stderr[-3000:]
    assert "must never be imported again" not in done.stderr


def _run_in_daemon(feeds: str, db: str, results: multiprocessing.queues.Queue) -> None:
    settings = Settings(store=f"sqlite:///{db}", allow_private_addresses=True, workers=2)
    store = SQLiteStore(db)
    try:
        summary = run(settings, load_feeds(Path(feeds)), store)
        results.put((summary.documents_stored, [f.reason for f in summary.failures]))
    except BaseException as exc:  # the test reads what went wrong
        results.put((-1, [f"{type(exc).__name__}: {exc}"]))
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["multiprocessing", "billiard"])
def test_pipeline_runs_inside_a_daemonic_process(kind: str, httpserver: HTTPServer, tmp_path: Path) -> None:
    # Celery's prefork pool (billiard) marks its processes daemonic and gives them its own kind of
    # authentication key; Airflow's task process, forked from one, inherits both, and multiprocessing
    # then refused to start children or to pickle the key for them
    feeds = _write_feeds(httpserver, tmp_path, prefix=f"daemonic{kind}")
    if kind == "billiard":
        billiard = pytest.importorskip("billiard", reason="billiard comes with Celery (the airflow-celery extra)")
        context = billiard.get_context("spawn")
    else:
        context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_run_in_daemon, args=(str(feeds), str(tmp_path / "store.db"), results),
                            daemon=True)
    child.start()
    try:
        stored, failures = results.get(timeout=180)
    finally:
        child.join(timeout=60)
    assert (stored, failures) == (4, [])
