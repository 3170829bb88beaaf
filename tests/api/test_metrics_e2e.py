"""Metrics and job-labelled logs of real jobs: the app (TestClient) with its real job manager and driver
processes on the session's local Ray, and one job run in-process.

``/metrics`` must move as a job runs: trainings started and finished rise in the driver process and reach the
service through the multiprocess folder, jobs by state follow the job, a second identical job counts its
trainings as reused; every line a driver logs says ``job=<id>``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from search import metrics
from search.joblog import JobLogFilter
from search.ray_runner import TuneRunner
from search.run import run_job
from search.store import JobState, open_store
from search.submit import submit_job
from tests.prometheus import Scrape, scrape

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# 15 + 4 = 19 trainings of about 0.4 s each (the exhaustive search of 4 planted tasks).
QUICK = {
    "dataset": {"name": "planted", "params": {"evaluation_samples": 1024}},
    "tasks": ["a1", "a2", "b1", "b2"],
    "training": {"epochs": 12},
}
TRAININGS = 19
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@contextmanager
def service(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'service.db'}",
        data_dir=tmp_path / "data",
        runs_dir=tmp_path / "runs",
        dashboard=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def follow(client: TestClient, job_id: str, timeout: float = 240.0) -> tuple[dict[str, Any], list[Scrape]]:
    """Scrape /metrics until the job ends; the job's last detail and every scrape."""
    scrapes = []
    deadline = time.monotonic() + timeout
    while True:
        scrapes.append(scrape(client))
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            scrapes.append(scrape(client))
            return job, scrapes
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job['progress']}"
        time.sleep(0.3)


def test_metrics_move_as_a_real_job_runs(ray_session: None, tmp_path: Path) -> None:
    with service(tmp_path) as client:
        job_id = client.post("/jobs", json=QUICK).json()["id"]
        job, scrapes = follow(client, job_id)
        assert job["state"] == "succeeded", job["error"]
        started = [s["taskgroup_trainings_started_total"] for s in scrapes]
        assert started == sorted(started) and started[0] < started[-1]  # rose while the job ran
        assert any(s["taskgroup_jobs", {"state": "running"}] == 1 for s in scrapes)
        assert any(0 < s["taskgroup_trainings_finished_total"] < TRAININGS for s in scrapes)  # mid-way
        end = scrapes[-1]
        assert all(name.startswith("taskgroup_") for name, _ in end.samples)  # none of Ray's own
        assert end["taskgroup_trainings_finished_total"] == TRAININGS
        assert end["taskgroup_trainings_started_total"] >= TRAININGS
        assert end["taskgroup_training_seconds_count"] == TRAININGS
        assert 0 < end["taskgroup_training_seconds_sum"] < 600
        assert end["taskgroup_trainings_failed_total"] == end["taskgroup_trainings_retried_total"] == 0
        assert end["taskgroup_jobs", {"state": "succeeded"}] == 1
        assert end["taskgroup_jobs", {"state": "running"}] == end["taskgroup_queue_length"] == 0
        route = {"method": "GET", "route": "/jobs/{job_id}", "status": "200"}
        assert end["taskgroup_http_request_duration_seconds_count", route] >= len(scrapes) - 1

        again = client.post("/jobs", json=QUICK).json()["id"]  # identical: every training reused
        job, scrapes = follow(client, again)
        assert job["state"] == "succeeded", job["error"]
        assert scrapes[-1]["taskgroup_trainings_reused_total"] == TRAININGS
        assert scrapes[-1]["taskgroup_trainings_finished_total"] == TRAININGS  # nothing trained again
        assert scrapes[-1]["taskgroup_jobs", {"state": "succeeded"}] == 2

    log = (tmp_path / "runs" / "logs" / f"job-{job_id}.log").read_text()
    lines = [line for line in log.splitlines() if LOG_LINE.match(line)]
    assert len(lines) >= 3, log[-2000:]
    assert all(f" job={job_id}: " in line for line in lines), [ln for ln in lines if job_id not in ln]


def test_an_in_process_run_counts_and_labels_its_logs(
    ray_session: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``run_job`` without the service: the counters count in this process, and every record the search
    logs (from whichever module) carries the job's id."""
    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    spec = {**QUICK, "tasks": ["a1", "a2"], "training": {"epochs": 3}}  # 3 + 2 = 5 trainings
    job = submit_job(store, spec)
    value = metrics.REGISTRY.get_sample_value
    before = {what: value(f"taskgroup_trainings_{what}_total") for what in metrics.COUNTERS}
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(JobLogFilter())
    final = run_job(store, job.id, runs_dir=tmp_path / "runs", runner=TuneRunner())
    assert final.state is JobState.SUCCEEDED, final.error
    grew = {what: value(f"taskgroup_trainings_{what}_total") - before[what] for what in metrics.COUNTERS}
    assert grew == {"started": 5, "finished": 5, "failed": 0, "retried": 0, "reused": 0}
    ours = [r for r in caplog.records if r.name.startswith("search.")]
    assert any("round 1" in r.getMessage() for r in ours)
    assert ours and {getattr(r, "job", None) for r in ours} == {job.id}
    store.close()
