"""Hosts on one machine for tests: Linux network namespaces joined by a bridge, and Ray nodes started in them
with the real ``ray start`` command line (tests/api/test_hosts.py).

Layout (``tag`` makes every name and the subnet unique to one test process)::

    root namespace                          namespace tg<tag>w1      namespace tg<tag>w2
    bridge tg<tag>br 10.77.<n>.1/24  ---veth---  eth0 10.77.<n>.11  ---  eth0 10.77.<n>.12
    Ray head (0 CPUs), the service,         Ray worker (1 CPU)       Ray worker (1 CPU)
    PostgreSQL on 127.0.0.1

The head lives in the root namespace because PostgreSQL listens on 127.0.0.1 only and the job drivers (which
alone write the store) run beside the service; the workers need no store. Every Ray process this module
starts has its own ``--temp-dir`` under ``/tmp/tgns<tag>``: that is how the clean-up finds them (and only
them) by process id, and it keeps ``ray start``'s address file (``ray_current_cluster``) out of the shared
``/tmp/ray``, where another user's ``ray.init()`` would find it. Worker namespaces get fixed ports (their own
network stack); the head, sharing the root namespace with other Ray clusters, gets free ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RAY = Path(sys.executable).with_name("ray")
OBJECT_STORE_BYTES = 80 * 1024**2  # per node: the trainings pass no large objects
WORKER_PORTS = {  # the same in every worker namespace: each has its own network stack
    "--node-manager-port": 7001,
    "--object-manager-port": 7002,
    "--metrics-export-port": 7003,
    "--dashboard-agent-grpc-port": 7004,
    "--dashboard-agent-listen-port": 7005,
    "--runtime-env-agent-port": 7006,
    "--min-worker-port": 7100,
    "--max-worker-port": 7199,
}
COMMAND_SECONDS = 30


class HostsUnavailable(RuntimeError):
    """The machine cannot give the test its namespaces (not root, no ``ip``, no permission): a skip reason."""


def run(command: list[str], *, check: bool = True, timeout: float = COMMAND_SECONDS) -> str:
    """Run a short command; its stdout, or RuntimeError with its stderr when ``check`` and it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def unavailable_reason() -> str | None:
    """Why this machine cannot run the namespace hosts, or None when it can (before trying)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root or in CI"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    if not RAY.exists():
        return f"no `ray` command next to {sys.executable}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _subnet_octet(tag: int) -> int:
    """A third octet for 10.77.x.0/24 that no interface of this machine uses yet."""
    used = run(["ip", "-4", "-o", "addr", "show"], check=False)
    for step in range(250):
        octet = (tag + step) % 250 + 1
        if f" 10.77.{octet}." not in used:
            return octet
    raise HostsUnavailable("every 10.77.x.0/24 subnet is in use on this machine")


@dataclass
class Hosts:
    """A bridge in the root namespace and one network namespace per worker host, each with a veth into the
    bridge. :meth:`create` builds them (HostsUnavailable if the kernel refuses), :meth:`destroy` removes
    everything it built, whatever state it is in."""

    workers: int = 2
    tag: int = field(default_factory=lambda: os.getpid() % 100_000)
    octet: int = 0
    created: list[str] = field(default_factory=list)  # namespaces made so far
    bridge_made: bool = False

    @property
    def bridge(self) -> str:
        return f"tg{self.tag}br"

    @property
    def head_ip(self) -> str:
        return f"10.77.{self.octet}.1"

    def namespace(self, i: int) -> str:
        return f"tg{self.tag}w{i}"

    def worker_ip(self, i: int) -> str:
        return f"10.77.{self.octet}.{10 + i}"

    def create(self) -> Hosts:
        self.octet = _subnet_octet(self.tag)
        try:
            run(["ip", "link", "add", self.bridge, "type", "bridge"])
        except RuntimeError as exc:
            raise HostsUnavailable(f"cannot create a bridge: {exc}") from None
        self.bridge_made = True
        run(["ip", "addr", "add", f"{self.head_ip}/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        for i in range(1, self.workers + 1):
            try:
                run(["ip", "netns", "add", self.namespace(i)])
            except RuntimeError as exc:
                raise HostsUnavailable(f"cannot create a network namespace: {exc}") from None
            self.created.append(self.namespace(i))
            self._wire(i)
        return self

    def _wire(self, i: int) -> None:
        ns, outer, inner = self.namespace(i), f"tg{self.tag}v{i}", f"tg{self.tag}p{i}"
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        run(["ip", "link", "set", outer, "master", self.bridge, "up"])
        run(["ip", "link", "set", inner, "netns", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", ns, "link", "set", inner, "name", "eth0"])
        run(["ip", "-n", ns, "addr", "add", f"{self.worker_ip(i)}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", self.head_ip])

    def exec(self, i: int, command: list[str]) -> str:
        return run(["ip", "netns", "exec", self.namespace(i), *command])

    def pids(self, i: int) -> list[int]:
        """Every process in worker host ``i``'s namespace."""
        out = run(["ip", "netns", "pids", self.namespace(i)], check=False)
        return [int(p) for p in out.split()]

    def kill_host(self, i: int) -> list[int]:
        """SIGKILL every process of worker host ``i`` (the host "dies"); the pids killed."""
        pids = self.pids(i)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def destroy(self) -> None:
        for ns in list(self.created):
            for _ in range(3):
                if not self.kill_host(int(ns.rsplit("w", 1)[1])):
                    break
                time.sleep(0.5)
            run(["ip", "netns", "del", ns], check=False)
            self.created.remove(ns)
        for i in range(1, self.workers + 1):  # a veth whose namespace never got its end
            run(["ip", "link", "del", f"tg{self.tag}v{i}"], check=False)
        if self.bridge_made:
            run(["ip", "link", "del", self.bridge], check=False)
            self.bridge_made = False


def _names_root(pid: Path, needle: str) -> bool:
    """Whether process ``pid`` (its /proc folder) has ``needle`` in its command line or an open file under it:
    Ray renames its processes (``ray::IDLE``, ``ray::DashboardAgent``), but their logs stay open there."""
    with contextlib.suppress(OSError):
        if needle.encode() in (pid / "cmdline").read_bytes():
            return True
        for fd in (pid / "fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(needle):
                    return True
    return False


def _processes_under(root: Path) -> list[int]:
    """Processes started with ``--temp-dir`` under ``root`` (ours: nobody else uses that folder)."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _names_root(entry, str(root))
    ]


@dataclass
class RayNodes:
    """The Ray head (root namespace) and workers (in :class:`Hosts`' namespaces), started with ``ray start
    --block`` so each node is one process tree of ours; :meth:`stop` ends them all by process id."""

    hosts: Hosts
    root: Path
    env: dict[str, str]
    logs: Path
    gcs_port: int = field(default_factory=free_port)
    dashboard_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.hosts.head_ip}:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, name: str, command: list[str]) -> None:
        out = (self.logs / f"{name}.log").open("ab")
        self.processes.append(
            subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        )

    def start_head(self) -> None:
        self._start(
            "head",
            [
                str(RAY), "start", "--head", "--block", "--disable-usage-stats",
                f"--node-ip-address={self.hosts.head_ip}", f"--port={self.gcs_port}", "--num-cpus=0",
                f"--object-store-memory={OBJECT_STORE_BYTES}", f"--temp-dir={self.root / 'head'}",
                "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}", f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
            ],
        )  # fmt: skip

    def start_worker(self, i: int) -> None:
        ports = [f"{flag}={port}" for flag, port in WORKER_PORTS.items()]
        self._start(
            f"worker{i}",
            [
                "ip", "netns", "exec", self.hosts.namespace(i), str(RAY), "start", "--block",
                f"--address={self.address}", f"--node-ip-address={self.hosts.worker_ip(i)}", "--num-cpus=1",
                f"--object-store-memory={OBJECT_STORE_BYTES}", f"--temp-dir={self.root / f'w{i}'}", *ports,
            ],
        )  # fmt: skip

    def log_tails(self, lines: int = 15) -> str:
        tails = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").strip().splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def stop(self) -> None:
        """SIGTERM the ``ray start --block`` processes (they stop their nodes), then SIGKILL whatever of ours
        is left: the processes whose command line names our temp root."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _ in range(3):
            left = _processes_under(self.root)
            if not left:
                break
            log.info("killing %d leftover Ray processes under %s", len(left), self.root)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)
