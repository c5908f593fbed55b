"""Fixed CPU cost of each Airflow task's energywatch call, in a fresh process as the task runner has it.

Each task runs in a process of its own that has imported Airflow's task SDK; what energywatch adds on
top (imports, settings, opening the store) is the fixed cost this prints, per task, with no work to do:
`record` sums counts, `plan` finds nothing due, `deliver` finds nothing due, `ingest` polls one feed
that answers 304. The CPU of child processes (the extraction fork server and its workers) is counted.

    .venv/bin/python benchmarks/task_overhead.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
import airflow.sdk  # the task runner has this loaded before the task's code runs

import os
from pathlib import Path

def descendants_cpu():
    # the fork server outlives the pool (multiprocessing keeps one per process), so its CPU and that
    # of the workers it reaped are read from /proc, not from RUSAGE_CHILDREN
    parents, total = {}, 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, ticks) in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                total += ticks / os.sysconf("SC_CLK_TCK")
                changed = True
    return total

def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + descendants_cpu()

task, store = sys.argv[1], sys.argv[2]
start_cpu, start_wall = cpu(), time.perf_counter()
from energywatch import orchestration
import_cpu = cpu() - start_cpu
if task == "record":
    orchestration.combine([{"documents_stored": 0}])
elif task == "plan":
    orchestration.plan_batches(10, store_url=store)
elif task == "deliver":
    orchestration.deliver_alerts(store_url=store)
elif task == "ingest":
    orchestration.ingest_batch(["idle"], store_url=store)
heavy = sorted(m for m in ("trafilatura", "httpx", "feedparser", "scipy", "energywatch.pipeline") if m in sys.modules)
print(json.dumps({"cpu_s": round(cpu() - start_cpu, 3), "import_cpu_s": round(import_cpu, 3), "wall_s": round(time.perf_counter() - start_wall, 3),
                  "heavy_modules": heavy}))
"""


class _NotModified(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>idle</title></channel></rss>')
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def main() -> None:
    """Print the fixed CPU cost of each task, the median of five fresh processes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotModified)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        feeds = Path(tmp) / "feeds.yaml"
        feeds.write_text(f"feeds:\n  - id: idle\n    name: idle\n    url: http://127.0.0.1:{server.server_port}/\n",
                         encoding="utf-8")
        store = f"sqlite:///{tmp}/store.db"
        env = {"ENERGYWATCH_FEEDS_FILE": str(feeds), "ENERGYWATCH_ALLOW_PRIVATE_ADDRESSES": "true",
               "ENERGYWATCH_ALERTS_FILE": str(Path(__file__).resolve().parents[1] / "config" / "alerts.yaml"),
               "ENERGYWATCH_WORKERS": "2", "PATH": "/usr/bin:/bin", "HOME": tmp}
        results = {}
        # the first ingest reads the feed (200: parsed in a worker) and stores its ETag; later ones get 304
        for label, task, repeat in (("ingest, first poll (200)", "ingest", 1), ("ingest, idle (304)", "ingest", 5),
                                    ("record", "record", 5), ("plan", "plan", 5), ("deliver", "deliver", 5)):
            runs = []
            for _ in range(repeat):
                done = subprocess.run([sys.executable, "-c", _CHILD, task, store], env=env, capture_output=True,
                                      text=True, timeout=300, check=True)
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            runs.sort(key=lambda r: r["cpu_s"])
            results[label] = runs[len(runs) // 2]
        for task, figures in results.items():
            print(f"{task:25s} CPU {figures['cpu_s']:.3f} s  wall {figures['wall_s']:.3f} s  "
                  f"heavy modules loaded: {', '.join(figures['heavy_modules']) or 'none'}")
    server.shutdown()


if __name__ == "__main__":
    main()
