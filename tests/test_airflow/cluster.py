"""Airflow's own components as users run them, for the real-scheduler tests: start, drive over REST, stop.

Every component runs in a session of its own, so that stopping can check that nothing was left behind
(no orphan process, no port still bound).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"success", "failed"}


def free_port() -> int:
    """A TCP port nobody listens on now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_bound(port: int) -> bool:
    """Whether anything still listens on the port, on any address."""
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with socket.socket(family) as s:
            # as servers do: connections closed a moment ago (TIME_WAIT) must not count as bound
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                return True
    return False


def session_pids(sid: int) -> list[int]:
    """The live processes of a session (zombies waiting for their parent excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process and its waited-for children."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    log: Path


@dataclass
class Airflow:
    """A running Airflow: its home, environment, API port and component processes."""

    home: Path
    env: dict[str, str]
    api_port: int
    components: list[Component] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    _token: str | None = None

    # ---- processes ---------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run one `airflow …` command to the end; fail with its output when it fails."""
        done = subprocess.run(["airflow", *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Component:
        """Start a long-running command (an Airflow component) in a session of its own."""
        log = self.home / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen([*args], env={**self.env, **(env or {})}, cwd=REPO, stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        handle.close()
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def logs(self, tail: int = 4000) -> str:
        """The end of every component's log, for a failing assertion's message."""
        return "\n".join(f"--- {c.name} ---\n{c.log.read_text(errors='replace')[-tail:]}" for c in self.components)

    def stop(self, timeout: float = 90) -> list[str]:
        """Stop as the README says (one SIGINT to each started process); what was left behind, if anything."""
        for component in self.components:
            if component.process.poll() is None:
                component.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        for component in self.components:
            try:
                component.process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                problems.append(f"{component.name} did not stop within {timeout:.0f} s of SIGINT")
        # children of the components: they must end with them, not linger
        while time.monotonic() < deadline and any(session_pids(c.process.pid) for c in self.components):
            time.sleep(0.5)
        for component in self.components:
            left = session_pids(component.process.pid)
            if left:
                problems.append(f"{component.name} left processes behind: {self._describe(left)}")
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if component.process.poll() is None:
                os.killpg(component.process.pid, signal.SIGKILL)
                component.process.wait()
        time.sleep(0.5)
        problems += [f"port {p} is still bound" for p in self.ports if port_bound(p)]
        return problems

    @staticmethod
    def _describe(pids: Sequence[int]) -> str:
        names = []
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
                names.append(f"{pid} {cmdline!r}")
            except OSError:
                names.append(str(pid))
        return "; ".join(names)

    # ---- REST API ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def password(self, user: str = "admin") -> str:
        """The simple auth manager's generated password, from the file the README points to."""
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[user]

    def token(self) -> str:
        if self._token is None:
            response = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password()},
                                  timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One call of Airflow's public REST API (/api/v2) as the admin user."""
        return httpx.request(method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {self.token()}"},
                             timeout=60, **kwargs)  # type: ignore[arg-type]

    def wait_healthy(self, timeout: float = 240) -> None:
        """Until the API answers and the scheduler, dag-processor and triggerer are heartbeating."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            dead = [c.name for c in self.components if c.process.poll() is not None]
            if dead:
                raise AssertionError(f"{dead} exited during start-up\n{self.logs()}")
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                last = json.dumps(health)
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise AssertionError(f"Airflow not healthy after {timeout:.0f} s: {last}\n{self.logs()}")

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has parsed the DAG and it is known to the API."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"/dags/{dag_id}").status_code == 200:
                return
            time.sleep(1)
        errors = self.api("GET", "/importErrors").text
        raise AssertionError(f"{dag_id} not parsed after {timeout:.0f} s; import errors: {errors}\n{self.logs()}")

    def runs(self, dag_id: str) -> list[dict]:
        response = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})
        response.raise_for_status()
        return response.json()["dag_runs"]

    def trigger(self, dag_id: str, conf: dict | None = None) -> httpx.Response:
        """Trigger a run now (as the UI's Trigger button does)."""
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        """Until the run ends; its final record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run.get("state") in TERMINAL:
                return run
            time.sleep(1)
        raise AssertionError(f"{dag_id} run {run_id} did not end within {timeout:.0f} s: "
                             f"{self.task_states(dag_id, run_id)}\n{self.logs()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        response = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        response.raise_for_status()
        return response.json()["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for ti in self.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            out[key] = ti["state"]
        return out

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        response = httpx.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
                             f"{try_number}", params={"map_index": map_index, "full_content": True}, timeout=60,
                             headers={"Accept": "application/x-ndjson", "Authorization": f"Bearer {self.token()}"})
        return response.text

    def asset_events(self, uri: str) -> list[dict]:
        assets = self.api("GET", "/assets", params={"uri_pattern": uri.split("://", 1)[-1]}).json()["assets"]
        ids = [a["id"] for a in assets if a["uri"].rstrip("/") == uri.rstrip("/")]
        if not ids:
            return []
        response = self.api("GET", "/assets/events", params={"asset_id": ids[0], "order_by": "timestamp",
                                                            "limit": 100})
        response.raise_for_status()
        return response.json()["asset_events"]
