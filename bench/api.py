"""HTTP API latency and throughput, idle and while a job trains, in one run:
``python bench/api.py [--seconds 8] [--clients 1,32] [--training-nice N]``.

Starts the real service (``taskgroup serve``: uvicorn, one worker, a local Ray) in a subprocess on a free
loopback port with a temporary SQLite store, then measures two situations with the same phases:

* **idle**: no job trains (a probe job is submitted and cancelled first, so ``GET /jobs/{id}`` has a job to
  read; the bench waits until its driver has exited);
* **load**: a ``planted`` job trains on every CPU of the service's Ray (it waits until trials run, and
  checks after every phase that the job still runs).

Each phase drives N concurrent clients (asyncio + httpx, keep-alive connections; N = each of ``--clients``)
for ``--seconds`` against one endpoint: ``GET /jobs/{id}``, ``GET /healthz`` and ``POST /solve`` (the shipped
5-task loss table, its 36 networks, as JSON, budgets 1..5 by 0.5). It prints requests, errors, requests per
second and p50/p99 latency per phase, then the ratios of issue 14's goals:

* under load, one client's p99 within 2x of the idle p99 (``p99 load/idle`` <= 2);
* 32-client throughput of ``GET /jobs/{id}`` under load at least half of idle (``req/s load/idle`` >= 0.5).

``--training-nice`` sets the service's ``TASKGROUP_TRAINING_NICE`` (0 = trainings at the service's priority,
the behaviour before issue 14; default: the service's default, 10). Everything runs on this machine: the
service, Ray's trainings and the clients share its cores. The job is cancelled and the service stopped at the
end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# 5 tasks in 3 planted groups: 31 + 5 = 36 trainings, several minutes of training on 2 CPUs at 60 epochs:
# longer than the load phases, so the job trains throughout.
JOB = {
    "dataset": {"name": "planted", "params": {"groups": [2, 2, 1]}},
    "tasks": ["a1", "a2", "b1", "b2", "c1"],
    "training": {"epochs": 60},
    "name": "bench/api.py",
}
PROBE = {"dataset": {"name": "planted"}, "tasks": ["a1", "a2"], "name": "bench/api.py idle probe"}
GOAL_P99_RATIO = 2.0
GOAL_THROUGHPUT_RATIO = 0.5
COLUMNS = {"clients": 7, "requests": 8, "errors": 6, "req/s": 8, "p50 ms": 8, "p99 ms": 8}


@dataclass
class Phase:
    situation: str
    endpoint: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return float("nan")
        return statistics.median(ms) if q == 0.5 else ms[min(len(ms) - 1, int(q * len(ms)))]

    def row(self) -> str:
        errors = sum(self.errors.values())
        return (
            f"{self.situation:<5} {self.endpoint:<16} {self.clients:>7} {len(self.latencies):>8} {errors:>6} "
            f"{self.rps:>8.1f} {self.percentile(0.5):>8.1f} {self.percentile(0.99):>8.1f}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def solve_body() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from grouping import LossTableModel, read_loss_tables

    tables = read_loss_tables(ROOT / "examples" / "losses.txt")
    scoring = read_loss_tables(ROOT / "examples" / "losses_test.txt").selection
    model = LossTableModel.from_tables(tables.selection, scoring)
    return {"table": model.model_dump(mode="json")}


async def drive(base: str, phase: Phase, seconds: float, method: str, path: str, body: Any) -> None:
    clients = phase.clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        stop_at = time.perf_counter() + seconds

        async def one_client() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                if status.startswith("2"):
                    phase.latencies.append(time.perf_counter() - started)
                else:
                    phase.errors[status] = phase.errors.get(status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        phase.seconds = time.perf_counter() - began


def wait_for(what: str, check: Any, timeout: float = 180, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def healthy(base: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the service exited with code {process.returncode}")
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def job(base: str, job_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()


def idle_probe(base: str) -> str:
    """A job to read while nothing trains: submitted, cancelled, its driver gone."""
    probe = httpx.post(f"{base}/jobs", json=PROBE, timeout=30).json()["id"]
    httpx.delete(f"{base}/jobs/{probe}", timeout=30)
    wait_for("the probe job to end", lambda: job(base, probe)["state"] == "cancelled")

    def no_driver() -> bool:
        health = httpx.get(f"{base}/healthz", timeout=30).json()
        return not health["service"]["info"]["running"]

    wait_for("the probe job's driver to exit", no_driver)
    time.sleep(3)  # let its processes settle
    return probe


def start_load(base: str, trials: int) -> str:
    """Submit the training job and wait until ``trials`` of its trainings run."""
    job_id = httpx.post(f"{base}/jobs", json=JOB, timeout=30).json()["id"]

    def training() -> bool:
        detail = job(base, job_id)
        if detail["state"] not in ("queued", "running"):
            raise RuntimeError(f"the job ended before the benchmark: {detail['state']} {detail['error']}")
        return detail["state"] == "running" and detail["progress"].get("running", 0) >= trials

    wait_for("trainings to run", training, timeout=300)
    time.sleep(2)
    return job_id


def measure(
    base: str, situation: str, job_id: str, args: argparse.Namespace, watch: str | None
) -> list[Phase]:
    """Every endpoint with every client count; ``watch``: a job that must keep training meanwhile."""
    endpoints = [
        ("GET /jobs/{id}", "GET", f"/jobs/{job_id}", None),
        ("GET /healthz", "GET", "/healthz", None),
        ("POST /solve", "POST", "/solve", solve_body()),
    ]
    phases = []
    for name, method, path, body in endpoints:
        for clients in args.clients:
            phase = Phase(situation, name, clients)
            asyncio.run(drive(base, phase, args.seconds, method, path, body))
            phases.append(phase)
            if watch is not None:
                detail = job(base, watch)
                progress = detail["progress"]
                done, total, running = progress["done"], progress["total"], progress["running"]
                note = f"job {detail['state']}, {done}/{total} done, {running} running"
                print(f"  {situation} {name} x{clients}: {note}", flush=True)
                if detail["state"] != "running":
                    print(
                        "  WARNING: the job no longer trains: the load figures after this are not under load"
                    )
    return phases


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"\n{'load':<5} {'endpoint':<16} " + " ".join(f"{name:>{width}}" for name, width in COLUMNS.items())
    )
    for phase in phases:
        print(phase.row())
        if phase.errors:
            print(f"{'':<22} errors by status: {phase.errors}")
    by = {(p.situation, p.endpoint, p.clients): p for p in phases}
    print("\nratios under load / idle")
    few, many = min(args.clients), max(args.clients)
    for endpoint in ("GET /jobs/{id}", "GET /healthz", "POST /solve"):
        idle, load = by[("idle", endpoint, few)], by[("load", endpoint, few)]
        ratio = load.percentile(0.99) / idle.percentile(0.99)
        verdict = "ok" if ratio <= GOAL_P99_RATIO else "MISSED"
        print(f"  {endpoint:<16} {few} client p99   {ratio:5.2f}x  (goal <= {GOAL_P99_RATIO:g}x: {verdict})")
    for endpoint in ("GET /jobs/{id}", "GET /healthz", "POST /solve"):
        idle, load = by[("idle", endpoint, many)], by[("load", endpoint, many)]
        ratio = load.rps / idle.rps if idle.rps else float("nan")
        if endpoint == "GET /jobs/{id}":
            verdict = "ok" if ratio >= GOAL_THROUGHPUT_RATIO else "MISSED"
            goal = f"goal >= {GOAL_THROUGHPUT_RATIO:g}x: {verdict}"
        else:
            goal = "no goal"
        print(f"  {endpoint:<16} {many} clients req/s {ratio:5.2f}x  ({goal})")


def service_env(workdir: Path, args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # the service's Ray on 127.0.0.1: bench traffic stays local
        TASKGROUP_DATA_DIR=str(workdir / "data"),
        TASKGROUP_RUNS_DIR=str(workdir / "runs"),
        TASKGROUP_RAY_NUM_CPUS=str(args.ray_cpus),
    )
    if args.training_nice is not None:
        env["TASKGROUP_TRAINING_NICE"] = str(args.training_nice)
    env.pop("RAY_ADDRESS", None)
    env.pop("TASKGROUP_API_TOKEN", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase (default 8)")
    parser.add_argument("--clients", default="1,32", help="client counts, comma-separated (default 1,32)")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the service's local Ray")
    parser.add_argument("--training-nice", type=int, help="TASKGROUP_TRAINING_NICE of the service")
    args = parser.parse_args()
    args.clients = sorted({int(c) for c in args.clients.split(",")})

    workdir = Path(tempfile.mkdtemp(prefix="taskgroup-bench-api-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "serve.log").open("wb")
    command = [
        sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--db", f"sqlite:///{workdir / 'bench.db'}", "--no-dashboard", "--log-level", "warning",
    ]  # fmt: skip
    service = subprocess.Popen(
        command, cwd=ROOT, env=service_env(workdir, args), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        started = time.monotonic()
        wait_for("the service to become healthy", lambda: healthy(base, service), timeout=120)
        nice = "default (10)" if args.training_nice is None else args.training_nice
        print(f"service up in {time.monotonic() - started:.1f} s on {base}; TASKGROUP_TRAINING_NICE={nice}")
        load_before = os.getloadavg()[0]
        probe = idle_probe(base)
        phases = measure(base, "idle", probe, args, watch=None)
        job_id = start_load(base, trials=args.ray_cpus)
        print(f"job {job_id}: {job(base, job_id)['progress']['total']} trainings; {args.ray_cpus} training")
        phases += measure(base, "load", job_id, args, watch=job_id)
        report(phases, args)
        print(
            f"\n{os.cpu_count()} cores shared by the service, Ray ({args.ray_cpus} CPUs of trainings) and "
            f"the clients; {args.seconds:g} s per phase; load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after."
        )
        httpx.delete(f"{base}/jobs/{job_id}", timeout=30)
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=90)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
