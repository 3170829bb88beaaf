"""HTTP API throughput and latency while a job trains: ``python bench/api.py [--seconds 10] [--clients 32]``.

Starts the real service (``taskgroup serve``: uvicorn, one worker, a local Ray) in a subprocess on a free
loopback port with a temporary SQLite store, submits a ``planted`` job and waits until its trainings run,
then drives two phases of ``--clients`` concurrent clients (asyncio + httpx, keep-alive connections):

* ``GET /jobs/{id}`` of the training job;
* ``POST /solve`` with a 5-task loss table (the shipped ``examples/losses.txt``, its 36 networks, as JSON),
  the default budget sweep 1..5 by 0.5.

Prints requests per second and p50/p99 latency of each phase, the errors, and the job's progress before and
after (so the figures are known to be taken while it trained). Everything runs on this machine: the service,
Ray's trainings and the clients share its cores. The job is cancelled and the service stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
# 5 tasks in 3 planted groups: 31 + 5 = 36 trainings, about a minute of training on 2 CPUs.
JOB = {
    "dataset": {"name": "planted", "params": {"groups": [2, 2, 1]}},
    "tasks": ["a1", "a2", "b1", "b2", "c1"],
    "training": {"epochs": 20},
    "name": "bench/api.py",
}


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def row(self, clients: int) -> str:
        done = len(self.latencies)
        rps = done / self.seconds if self.seconds else 0.0
        ms = sorted(x * 1000 for x in self.latencies)
        p50 = statistics.median(ms) if ms else float("nan")
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan")
        errors = sum(self.errors.values())
        return f"{self.name:<22} {clients:>7} {done:>8} {errors:>6} {rps:>8.1f} {p50:>8.1f} {p99:>8.1f}"


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


async def drive(
    base: str, phase: Phase, clients: int, seconds: float, method: str, path: str, body: Any
) -> None:
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


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become healthy in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the service's local Ray")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="taskgroup-bench-api-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # the service's Ray on 127.0.0.1: bench traffic stays local
        TASKGROUP_DATA_DIR=str(workdir / "data"),
        TASKGROUP_RUNS_DIR=str(workdir / "runs"),
        TASKGROUP_RAY_NUM_CPUS=str(args.ray_cpus),
    )
    env.pop("RAY_ADDRESS", None)
    env.pop("TASKGROUP_API_TOKEN", None)
    log = (workdir / "serve.log").open("wb")
    command = [
        sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--db", f"sqlite:///{workdir / 'bench.db'}", "--no-dashboard", "--log-level", "warning",
    ]  # fmt: skip
    service = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        wait_healthy(base, service)
        print(f"service up in {time.monotonic() - started:.1f} s on {base} (log {workdir / 'serve.log'})")
        job = httpx.post(f"{base}/jobs", json=JOB, timeout=30).json()
        job_id = job["id"]
        while True:  # measure only once trainings run
            detail = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()
            if detail["state"] == "running" and detail["progress"].get("running", 0) >= 1:
                break
            if detail["state"] not in ("queued", "running"):
                raise RuntimeError(f"the job ended before the benchmark: {detail['state']} {detail['error']}")
            time.sleep(0.5)
        print(f"job {job_id}: {detail['progress']['total']} trainings; training started")

        phases = [
            (Phase("GET /jobs/{id}"), "GET", f"/jobs/{job_id}", None),
            (Phase("POST /solve (5 tasks)"), "POST", "/solve", solve_body()),
        ]
        for phase, method, path, body in phases:
            before = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()["progress"]
            asyncio.run(drive(base, phase, args.clients, args.seconds, method, path, body))
            after = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()
            print(
                f"  {phase.name}: job trainings done {before['done']} -> {after['progress']['done']}, "
                f"running {after['progress']['running']}, state {after['state']}"
            )
        print()
        widths = {"clients": 7, "requests": 8, "errors": 6, "req/s": 8, "p50 ms": 8, "p99 ms": 8}
        print(f"{'endpoint':<22} " + " ".join(f"{name:>{width}}" for name, width in widths.items()))
        for phase, *_ in phases:
            print(phase.row(args.clients))
            if phase.errors:
                print(f"{'':<22} errors by status: {json.dumps(phase.errors)}")
        print(
            f"\n{os.cpu_count()} cores shared by the service, Ray ({args.ray_cpus} CPUs of trainings) "
            f"and the clients; {args.seconds:g} s per phase."
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
