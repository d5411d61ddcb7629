"""The files, environment and processes of one RabbitMQ node of a test cluster."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
from pathlib import Path

from tests.support.processes import free_port

#: epmd, the machine's broker (AMQP, distribution, management) and the CLI's distribution range
RESERVED = frozenset({4369, 5672, 15672, 25672, *range(35672, 35683)})


def server_env(name: str, dist_port: int, home: Path, plugins: Path | None) -> dict[str, str]:
    """Every path the node writes or reads is its own under `home`; none of the machine's
    RabbitMQ files (/etc/rabbitmq: its node name, listeners, plugins) is read."""
    return {
        **({"RABBITMQ_PLUGINS_DIR": str(plugins)} if plugins else {}),
        **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "beam.pid"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_CONFIG_FILES": str(home / "conf.d"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        # loopback only: epmd (should this node be the one to start it) and the distribution
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def write_files(home: Path, amqp_port: int, seed: str | None, vhosts: list[str]) -> None:
    """No plugins (they only slow the boot). A node with a `seed` joins it while booting; the
    first node (no seed) boots with `vhosts` made, and guest/guest allowed on them: a vhost
    that is there from the start costs a test no rabbitmqctl runs (two, a second or more)."""
    (home / "conf.d").mkdir(parents=True)
    if seed is None:
        (home / "definitions.json").write_text(json.dumps(_definitions(["/", *vhosts])))
        first_or_joining = f"load_definitions = {home / 'definitions.json'}\n"
    else:
        first_or_joining = (
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"cluster_formation.classic_config.nodes.1 = {seed}\n"
            "cluster_formation.discovery_retry_limit = 240\n"
            "cluster_formation.discovery_retry_interval = 250\n"
            "cluster_formation.randomized_startup_delay_range.min = 0\n"
            "cluster_formation.randomized_startup_delay_range.max = 0\n")
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{amqp_port}\n"
        "log.console = false\n"
        "log.file.level = info\n" + first_or_joining)
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq-env.conf").write_text("")


def _definitions(vhosts: list[str]) -> dict[str, list[dict[str, str]]]:
    """What a fresh node has (a node that imports definitions makes no default user), plus
    the vhosts."""
    return {
        "users": [{"name": "guest", "password": "guest", "tags": "administrator"}],
        "vhosts": [{"name": vhost} for vhost in vhosts],
        "permissions": [{"user": "guest", "vhost": vhost, "configure": ".*", "write": ".*",
                         "read": ".*"} for vhost in vhosts],
    }


def core_apps(into: Path) -> Path | None:
    """A plugins directory that links RabbitMQ's own applications and none of its plugins
    (the applications that depend on `rabbit`): a node then discovers, reads the config
    schemas of and scans for feature flags and boot steps a fraction of the modules, a fifth
    less CPU per boot. None where the installation's plugins directory is not found: the
    nodes then use their default one."""
    script = shutil.which("rabbitmq-server")
    if script is None:
        return None
    real = Path(script).resolve()
    if real.name == "rabbitmq-script-wrapper":  # Debian's: runs the real one next to it
        real = (real.parent / "rabbitmq-server").resolve()
    plugins = real.parent.parent / "plugins"
    if not any(plugins.glob("rabbit-*")):
        return None
    into.mkdir()
    for app in plugins.iterdir():
        if not _is_plugin(app):
            (into / app.name).symlink_to(app)
    return into


def _is_plugin(app: Path) -> bool:
    spec = next(app.glob("ebin/*.app"), None) if app.is_dir() else None
    if spec is None:
        return False  # an archive or a file: kept, whatever it is
    needs = re.search(r"\{applications,\s*\[([^\]]*)\]", spec.read_text(errors="replace"))
    return needs is not None and "rabbit" in re.findall(r"\w+", needs.group(1))


def server_user() -> pwd.struct_passwd | None:
    """Debian's `rabbitmq-server`, run by root, runs the node as the `rabbitmq` user: its
    directories must be that user's."""
    script = shutil.which("rabbitmq-server")
    if os.geteuid() != 0 or script is None:
        return None
    if Path(script).resolve().name != "rabbitmq-script-wrapper":
        return None
    return pwd.getpwnam("rabbitmq")


def beams_named(name: str) -> set[int]:
    """PIDs of the live beam.smp processes started as node `name` (from their environment):
    the node itself, never a process that happens to reuse a dead node's PID."""
    wanted = f"RABBITMQ_NODENAME={name}".encode()
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "beam.smp":
                continue
            if wanted not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
        except OSError:
            continue
        found.add(int(proc.name))
    return found


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it died on its own meanwhile
        os.kill(pid, signal.SIGKILL)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def free_ports(count: int) -> list[int]:
    """Free loopback ports, none of them one the machine's broker or its CLI may use."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in RESERVED and port not in ports:
            ports.append(port)
    return ports
