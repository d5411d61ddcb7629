"""A three-node RabbitMQ cluster of the tests' own on this machine, to kill nodes of.

Its nodes have their own names, ports and directories, so the machine's broker (5672, 25672,
15672) is never touched; everything listens on loopback only. Nodes are named `@localhost`: the
loopback name resolves everywhere, and epmd may listen on 127.0.0.1 alone (a short host name
can resolve to another address). The nodes and `rabbitmqctl` come from the same scripts on
PATH, so they run as the same user with the same HOME and therefore the same Erlang cookie
(Debian's scripts, run by root, switch to the `rabbitmq` user and its cookie).

The nodes boot one after the other, each joining the first while it boots (peer discovery
from the config file), so no node boots twice (stop_app / join_cluster / start_app would restart
each joiner, and a boot is CPU-bound). One at a time because a node that joins a member still
booting, or joins at the same moment as another, can fail its own boot (feature-flag and
schema races between the nodes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

from tests.support.processes import wait_until
from tests.support.rabbitnodes import (
    accepts,
    beams_named,
    core_apps,
    free_ports,
    kill,
    server_env,
    server_user,
    write_files,
)

NEEDED = ("rabbitmq-server", "rabbitmqctl", "erl")
BOOT_SECONDS = 120.0
SPARE_VHOSTS = 4


class Node:
    def __init__(self, name: str, amqp_port: int, dist_port: int, home: Path) -> None:
        self.name, self.amqp_port, self.dist_port, self.home = name, amqp_port, dist_port, home
        self.pid = 0

    def __repr__(self) -> str:
        return f"<Node {self.name} amqp={self.amqp_port} pid={self.pid}>"

    @property
    def pid_file(self) -> Path:
        return self.home / "beam.pid"

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{urllib.parse.quote(vhost, safe='')}"


class RabbitCluster:
    """`start()` boots the nodes; `kill()` and `revive()` one; `close()` removes every trace."""

    def __init__(self, size: int = 3) -> None:
        missing = [tool for tool in NEEDED if not shutil.which(tool)]
        if missing:
            raise RuntimeError(f"the RabbitMQ cluster tests need {', '.join(missing)} on PATH "
                               "(Debian: apt-get install rabbitmq-server)")
        self.base = Path(tempfile.mkdtemp(prefix="tasks-rabbitcluster-"))
        tag = uuid.uuid4().hex[:6]
        ports = free_ports(2 * size)
        self.nodes = [Node(f"tasks-{tag}-c{i + 1}@localhost", ports[2 * i], ports[2 * i + 1],
                           self.base / f"c{i + 1}") for i in range(size)]
        #: made while the first node boots, handed out by new_vhost()
        self.spare_vhosts = [f"tasks-test-{tag}-{i}" for i in range(SPARE_VHOSTS)]
        for node in self.nodes:
            first = node is self.nodes[0]
            write_files(node.home, node.amqp_port, seed=None if first else self.nodes[0].name,
                        vhosts=self.spare_vhosts if first else [])
        owner = server_user()
        if owner is not None:
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.plugins = core_apps(self.base / "plugins")  # after the chown: links to the system's
        self.started_in = 0.0

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> RabbitCluster:
        began = time.monotonic()
        for node in self.nodes:  # one at a time: see the module's docstring
            self._launch(node)
            self._await_boot([node])
        self.ctl(self.nodes[0], "await_online_nodes", str(len(self.nodes)), "--timeout", "60")
        self.started_in = time.monotonic() - began
        return self

    def kill(self, node: Node) -> None:
        """`kill -9` of the node's own beam: no goodbye to its peers or its clients."""
        assert self.alive(node), f"{node.name} is not running"
        os.kill(node.pid, signal.SIGKILL)
        wait_until(lambda: not self.alive(node), 10, f"{node.name} to die")

    def revive(self, node: Node) -> None:
        """Start a killed node again; it rejoins the cluster from its own data directory."""
        assert not self.alive(node), f"{node.name} is running"
        self._launch(node)
        self._await_boot([node])
        self.ctl(node, "await_online_nodes", str(len(self.nodes)), "--timeout", "60")

    def alive(self, node: Node) -> bool:
        return node.pid != 0 and node.pid in beams_named(node.name)

    def close(self) -> None:
        """Kill every node this cluster started, by its own PID, and remove its directories."""
        for node in self.nodes:
            for pid in beams_named(node.name):  # never a stale PID that another process reuses
                kill(pid)
            node.pid = 0
        names = [node.name for node in self.nodes]
        wait_until(lambda: not any(beams_named(name) for name in names), 10, "the nodes to exit")
        shutil.rmtree(self.base, ignore_errors=True)

    # -- what a test asks ----------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def new_vhost(self) -> str:
        """A fresh vhost that guest may use on every node; it goes with the cluster."""
        if self.spare_vhosts:
            return self.spare_vhosts.pop(0)
        name = f"tasks-test-{uuid.uuid4().hex[:10]}"
        seed = self._any_alive()
        self.ctl(seed, "add_vhost", name)
        self.ctl(seed, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return name

    def urls(self, vhost: str) -> list[str]:
        return [node.url(vhost) for node in self.nodes]

    def leaders(self, vhost: str) -> dict[str, str]:
        """{queue name: node name of its leader} for the quorum queues of `vhost`, as a live
        node sees them (a queue whose leader is being elected may still name the dead one)."""
        done = self.ctl(self._any_alive(), "list_queues", "-p", vhost, "name", "type", "leader",
                        "--formatter", "json", "--quiet")
        return {q["name"]: q["leader"] for q in json.loads(done.stdout) if q["type"] == "quorum"}

    def ctl(self, node: Node, *args: str) -> subprocess.CompletedProcess[str]:
        """`rabbitmqctl -n node ...`; fails with its output and the node's log."""
        done = subprocess.run(["rabbitmqctl", "-n", node.name, *args], capture_output=True,
                              text=True, timeout=BOOT_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {node.name} {' '.join(args)} failed "
                               f"({done.returncode}):\n{done.stdout}{done.stderr}\n"
                               f"{self.log(node)}")
        return done

    def log(self, node: Node, tail: int = 3000) -> str:
        logs = sorted((node.home / "log").glob("*.log"))
        text = "".join(p.read_text(errors="replace") for p in logs)
        return f"--- {node.name} log (last {tail} chars):\n{text[-tail:]}"

    # -- inside --------------------------------------------------------------------------------
    def _launch(self, node: Node) -> None:
        node.pid = 0
        node.pid_file.unlink(missing_ok=True)
        launched = subprocess.run(["rabbitmq-server", "-detached"], env=server_env(
            node.name, node.dist_port, node.home, self.plugins), capture_output=True, text=True,
            timeout=30)
        if launched.returncode != 0:
            raise RuntimeError(f"rabbitmq-server for {node.name} failed: {launched.stderr}")

    def _await_boot(self, nodes: list[Node]) -> None:
        """Until each node takes AMQP connections (its listener opens last in its boot). The PID
        is the one the node writes to its PID file early in its boot, once a beam of that node
        name has it. Cheap: no CLI run per poll."""
        began = time.monotonic()
        waiting = list(nodes)
        while waiting:
            for node in list(waiting):
                beams = beams_named(node.name)
                if not node.pid and node.pid_file.exists():
                    written = node.pid_file.read_text().strip()
                    node.pid = int(written) if written.isdigit() and int(written) in beams else 0
                gone = node.pid not in beams if node.pid else not beams
                if gone and (node.pid or time.monotonic() - began > 15):
                    raise RuntimeError(f"{node.name} died while booting\n{self.log(node)}")
                if node.pid and accepts(node.amqp_port):
                    waiting.remove(node)
            if waiting and time.monotonic() - began > BOOT_SECONDS:
                raise RuntimeError(f"{waiting[0].name} did not boot within {BOOT_SECONDS}s\n"
                                   f"{self.log(waiting[0])}")
            time.sleep(0.1)

    def _any_alive(self) -> Node:
        return next(n for n in self.nodes if self.alive(n))
