"""What each Airflow task's call imports: every task is a fresh process, and imports are its fixed cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = r"""
import json, sys
from energywatch import orchestration
task = sys.argv[1]
if task == "record":
    orchestration.combine([{"documents_stored": 2}, {"documents_stored": 1}])
elif task == "plan":
    orchestration.plan_batches(10, store_url=sys.argv[2])
elif task == "deliver":
    orchestration.deliver_alerts(store_url=sys.argv[2])
elif task == "ingest":
    orchestration.ingest_batch([], store_url=sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""
# what each task may not load: the pipeline's stack where it does no fetching, and SciPy anywhere
_HEAVY = {"scipy", "datasketch", "trafilatura", "feedparser", "aiohttp", "energywatch.pipeline", "py3langid", "numpy"}
_FORBIDDEN = {"record": _HEAVY, "plan": _HEAVY, "deliver": _HEAVY - {"aiohttp"},
              "ingest": {"scipy", "datasketch", "trafilatura", "py3langid", "numpy"}}


@pytest.mark.parametrize("task", sorted(_FORBIDDEN))
def test_each_task_imports_only_what_it_needs(task: str, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - id: one\n    name: one\n    url: https://example.org/feed\n", encoding="utf-8")
    env = {"ENERGYWATCH_FEEDS_FILE": str(feeds), "ENERGYWATCH_ALERTS_FILE": str(tmp_path / "none.yaml"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _PROBE, task, f"sqlite:///{tmp_path / 'store.db'}"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)} | set(json.loads(done.stdout))
    assert not loaded & _FORBIDDEN[task], f"{task} loads {sorted(loaded & _FORBIDDEN[task])}"
