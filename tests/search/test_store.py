"""One test suite for the results store, run against every backend (SQLite file and PostgreSQL).

The PostgreSQL run uses a database created for this test session (dropped at the end) with one schema per
test, on ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` (or ``$TASKGROUP_TEST_POSTGRES_URL``); it
skips, saying why, only where no server answers.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

import search.store.migrations as migrations
from grouping import Candidate, LossTable, LossTableModel, budget_curve
from search.plan import Plan, PlanSummary, make_plan
from search.records import JobResult, Progress, Provenance
from search.spec import JobSpec
from search.store import (
    SCHEMA_VERSION,
    JobNotFoundError,
    JobState,
    SchemaVersionError,
    Store,
    StoreError,
    StoreUnavailableError,
    TrainingNotFoundError,
    TrainingState,
    open_store,
)
from workers.spec import DatasetRef, EpochRecord, TrainingResult, TrainingSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test: a SQLite file under tmp_path, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def _aware_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() is not None and value.utcoffset().total_seconds() == 0


def spec(name: str = "job", tasks: tuple[str, ...] = ("a1", "a2")) -> JobSpec:
    return JobSpec(dataset=DatasetRef(name="planted"), tasks=list(tasks), name=name)


def plan(job: JobSpec | None = None) -> Plan:
    return make_plan(job or spec(), "fingerprint")


def tspec(tasks: tuple[str, ...] = ("s",), seed: int = 0) -> TrainingSpec:
    return TrainingSpec(dataset=DatasetRef(name="planted"), tasks=list(tasks), seed=seed)


def _result(selection: float, wall: float = 1.0, device: str = "cpu", seed: int = 0) -> TrainingResult:
    epoch = EpochRecord(epoch=1, train_loss=1.0, validation_loss=selection, validation_losses={}, seconds=0.1)
    return TrainingResult(
        spec=tspec(seed=seed),
        selection={"s": selection},
        scoring={"s": selection + 0.5},
        curve=[epoch],
        best_epoch=1,
        epochs_run=1,
        wall_seconds=wall,
        flops_per_sample=1.0,
        parameters=1,
        device=device,
    )


def job_result(job_id: str, total: float = 1.0) -> JobResult:
    table = LossTable.from_losses(["a1", "a2"], {Candidate(("a1", "a2")): {"a1": total, "a2": 0.5}})
    return JobResult(
        **budget_curve(table, budgets=[1.0]).model_dump(),
        job_id=job_id,
        spec=spec(),
        plan=PlanSummary(approximation="exhaustive", candidates=1, network_trainings=1, snt_epochs=20),
        loss_table=LossTableModel.from_tables(table),
        provenance=Provenance(),
    )


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` on ``count`` threads released together; return the exceptions they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


# ----------------------------------------------------------------------------------------------- jobs


def test_create_and_get_job(store: Store) -> None:
    before = datetime.now(UTC)
    job_spec = spec().model_copy(update={"budgets": [1.0, 1.5]})
    job = store.create_job(job_spec, plan=plan(job_spec))
    after = datetime.now(UTC)
    assert job.state is JobState.QUEUED
    assert job.spec == job_spec and job.plan == plan(job_spec)  # typed records, read back whole
    size = len(plan(job_spec).trainings)
    assert job.progress == Progress(total=size, pending=size)  # the plan's size, nothing done yet
    assert (job.result, job.error, job.cancel_requested) == (None, None, False)
    assert job.started_at is None and job.finished_at is None
    assert _aware_utc(job.created_at) and before <= job.created_at <= after
    assert store.get_job(job.id) == job
    assert len(job.id) == 12


def test_job_id_given_taken_or_invalid(store: Store) -> None:
    assert store.create_job(spec(), job_id="my-job_1.a").id == "my-job_1.a"
    with pytest.raises(ValueError, match="already taken"):
        store.create_job(spec(), job_id="my-job_1.a")
    for bad in ["", "has space", "-leading", "x" * 65, "a/b"]:
        with pytest.raises(ValueError, match="job_id"):
            store.create_job(spec(), job_id=bad)
    with pytest.raises(ValueError, match="spec must be a dict"):
        store.create_job(["not", "a", "dict"])  # type: ignore[arg-type]
    assert store.count_jobs() == 1


def test_unknown_job_is_a_key_error_with_message(store: Store) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.get_job("nope"),
        lambda: store.update_job("nope", state=JobState.RUNNING),
        lambda: store.request_cancel("nope"),
        lambda: store.job_trainings("nope"),
        lambda: store.link_job_trainings("nope", []),
    ]
    for call in calls:
        with pytest.raises(KeyError) as info:
            call()
        assert isinstance(info.value, JobNotFoundError)
        assert str(info.value) == "job nope not found"


def test_job_state_transitions_and_timestamps(store: Store) -> None:
    job = store.create_job(spec())
    running = store.update_job(job.id, state=JobState.RUNNING)
    assert running.state is JobState.RUNNING and _aware_utc(running.started_at)
    assert running.started_at >= job.created_at and running.finished_at is None
    again = store.update_job(job.id, state="running", progress=Progress(done=1))
    assert again.started_at == running.started_at  # set on the first entry only
    failed = store.update_job(job.id, state=JobState.FAILED, error="boom")
    assert failed.finished_at is not None and failed.finished_at >= failed.started_at
    assert failed.error == "boom"
    store.request_cancel(job.id)  # no effect on a finished job
    assert store.get_job(job.id).cancel_requested is False

    # resume a failed job: finished_at, error and the cancel flag go; started_at stays the first one
    resumed = store.update_job(job.id, state=JobState.RUNNING)
    assert (resumed.finished_at, resumed.error, resumed.cancel_requested) == (None, None, False)
    assert resumed.started_at == running.started_at
    done = store.update_job(job.id, state=JobState.SUCCEEDED, result=job_result(job.id))
    assert done.finished_at is not None and done.finished_at >= resumed.started_at
    same = store.update_job(job.id, state=JobState.SUCCEEDED, progress=Progress(done=2))
    assert same.finished_at == done.finished_at
    for illegal in [JobState.RUNNING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED]:
        with pytest.raises(ValueError, match=f"succeeded: cannot become {illegal}"):
            store.update_job(job.id, state=illegal)
    with pytest.raises(ValueError, match="state must be one of"):
        store.update_job(job.id, state="exploded")
    assert store.get_job(job.id).state is JobState.SUCCEEDED


def test_cancel_queued_job_directly(store: Store) -> None:
    job = store.create_job(spec())
    cancelled = store.update_job(job.id, state=JobState.CANCELLED)
    assert cancelled.started_at is None and cancelled.finished_at is not None


def test_update_job_fields(store: Store) -> None:
    job = store.create_job(spec())
    store.update_job(job.id, progress=Progress(done=1, total=4), plan=plan())
    updated = store.update_job(job.id, progress=Progress(done=2))
    assert updated.progress == Progress(done=2)  # replaced, not merged
    assert updated.plan == plan()  # None left it unchanged
    updated = store.update_job(job.id, result=job_result(job.id), error="warning: x")
    assert updated.result == job_result(job.id) and updated.error == "warning: x"
    assert store.get_job(job.id) == updated
    with pytest.raises(ValueError, match="progress must be a dict"):
        store.update_job(job.id, progress=[1, 2])  # type: ignore[arg-type]


def test_list_count_filter_and_paginate(store: Store) -> None:
    ids = [store.create_job(spec()).id for i in range(7)]
    for job_id in ids[:3]:
        store.update_job(job_id, state=JobState.RUNNING)
    store.update_job(ids[0], state=JobState.SUCCEEDED)
    newest_first = list(reversed(ids))
    assert [j.id for j in store.list_jobs()] == newest_first
    pages = [store.list_jobs(limit=3, offset=o) for o in (0, 3, 6, 9)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [j.id for page in pages for j in page] == newest_first
    assert [j.id for j in store.list_jobs(state=JobState.RUNNING)] == [ids[2], ids[1]]
    assert [j.id for j in store.list_jobs(state="queued", limit=2, offset=1)] == [ids[5], ids[4]]
    counts = {state: store.count_jobs(state) for state in JobState}
    assert counts == {
        JobState.QUEUED: 4,
        JobState.RUNNING: 2,
        JobState.SUCCEEDED: 1,
        JobState.FAILED: 0,
        JobState.CANCELLED: 0,
    }
    assert store.count_jobs() == 7 == sum(counts.values())
    assert [j.id for j in store.unfinished_jobs()] == ids[1:]  # queued or running, oldest first
    assert not any(hasattr(j, "result") or hasattr(j, "plan") for j in store.list_jobs())  # not loaded
    for kwargs in ({"limit": 0}, {"limit": 10_001}, {"offset": -1}, {"state": "done"}):
        with pytest.raises(ValueError):
            store.list_jobs(**kwargs)  # type: ignore[arg-type]


def test_cancel_flag_is_seen_by_another_store_object(store: Store, store_url: str) -> None:
    job = store.create_job(spec())
    store.update_job(job.id, state=JobState.RUNNING)
    with open_store(store_url) as other:  # the API process, say
        assert other.request_cancel(job.id).cancel_requested is True
    assert store.get_job(job.id).cancel_requested is True
    assert store.cancel_requested(job.id) is True
    assert store.update_job(job.id, progress=Progress(done=3)).cancel_requested is True  # not lost
    assert store.update_job(job.id, state=JobState.CANCELLED).state is JobState.CANCELLED


# ----------------------------------------------------------------------------------------------- trainings


def test_ensure_and_get_trainings(store: Store) -> None:
    first = store.ensure_trainings({"k2": tspec(("s",)), "k1": tspec(("d",))})
    assert list(first) == ["k2", "k1"]  # the given order
    rec = first["k1"]
    assert (rec.state, rec.attempts, rec.spec, rec.result) == (
        TrainingState.PENDING,
        0,
        tspec(("d",)),
        None,
    )
    assert _aware_utc(rec.created_at) and rec.updated_at == rec.created_at
    again = store.ensure_trainings({"k1": tspec(("changed",)), "k3": tspec(("n",))})
    assert again["k1"] == rec  # an existing training is left as it is
    assert again["k3"].state is TrainingState.PENDING
    assert store.ensure_trainings({}) == {}
    assert store.get_training("k1") == rec
    assert store.get_training("missing") is None
    got = store.get_trainings(["k3", "missing", "k1", "k3"])
    assert list(got) == ["k3", "k1"]
    with pytest.raises(ValueError, match="training key"):
        store.ensure_trainings({"": tspec()})
    with pytest.raises(ValueError, match="not one string"):
        store.get_trainings("k1")


def test_training_lifecycle(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    running = store.mark_training_running("k")
    assert (running.state, running.attempts) == (TrainingState.RUNNING, 1)
    assert _aware_utc(running.started_at) and running.finished_at is None
    failed = store.fail_training("k", "CUDA out of memory")
    assert (failed.state, failed.error, failed.attempts) == (TrainingState.FAILED, "CUDA out of memory", 1)
    assert failed.finished_at >= failed.started_at
    retry = store.mark_training_running("k")
    assert (retry.state, retry.attempts, retry.error, retry.finished_at) == (
        TrainingState.RUNNING,
        2,
        None,
        None,
    )
    done = store.finish_training("k", _result(0.25, wall=3.5))
    assert (done.state, done.result, done.device, done.wall_seconds) == (
        TrainingState.SUCCEEDED,
        _result(0.25, wall=3.5),
        "cpu",
        3.5,
    )
    assert done.finished_at >= done.started_at >= retry.created_at
    assert done.updated_at == done.finished_at
    assert store.get_training("k") == done
    for call in (store.mark_training_running, lambda k: store.finish_training(k, _result(1.0))):
        with pytest.raises(KeyError) as info:
            call("ghost")
        assert isinstance(info.value, TrainingNotFoundError) and str(info.value) == "training ghost not found"
    with pytest.raises(ValueError, match="wall_seconds"):
        store.finish_training("k", _result(1.0, wall=-1.0))


def test_first_success_wins(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    store.mark_training_running("k")
    first = store.finish_training("k", _result(0.1, wall=2.0, device="cuda:0"))
    second = store.finish_training("k", _result(0.9, wall=9.0))
    assert second == first  # the second success is dropped; the caller sees the stored one
    after_fail = store.fail_training("k", "late failure of a duplicate run")
    assert after_fail == first
    assert store.mark_training_running("k") == first  # nothing to run: attempts unchanged
    assert store.get_training("k").result == _result(0.1, wall=2.0, device="cuda:0")


def test_non_finite_numbers_are_refused_clearly(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    with pytest.raises(ValueError, match=r"result\['selection'\]\['s'\] = nan is not a finite number"):
        store.finish_training("k", _result(float("nan")))
    job = store.create_job(spec())
    with pytest.raises(ValueError, match=r"progress\['estimate_seconds'\] = inf"):
        store.update_job(job.id, progress=Progress(estimate_seconds=float("inf")))
    assert store.get_job(job.id).progress == Progress()
    assert store.get_training("k").state is TrainingState.PENDING


def test_reuse_links_and_resume(store: Store) -> None:
    # job 1 trains k1 and k2
    job1 = store.create_job(spec())
    store.ensure_trainings({"k1": tspec(), "k2": tspec()})
    store.link_job_trainings(job1.id, ["k1", "k2"], reused=set())
    for key in ("k1", "k2"):
        store.mark_training_running(key)
        store.finish_training(key, _result(0.5))
    # job 2 needs k1, k2 (already succeeded: reused) and k3 (new)
    job2 = store.create_job(spec())
    found = store.ensure_trainings({"k3": tspec(), "k1": tspec(), "k2": tspec()})
    reused = {k for k, rec in found.items() if rec.state is TrainingState.SUCCEEDED}
    assert reused == {"k1", "k2"}
    store.link_job_trainings(job2.id, ["k3", "k1", "k2"], reused=reused)
    view = store.job_trainings(job2.id)
    assert [(v.training.key, v.reused) for v in view] == [("k3", False), ("k1", True), ("k2", True)]
    assert view[1].training.result == _result(0.5)
    # job 2 trains k3, crashes, resumes: linking again (now every key is succeeded) keeps the first flags
    store.mark_training_running("k3")
    store.finish_training("k3", _result(0.7))
    store.ensure_trainings({"k4": tspec()})
    store.link_job_trainings(job2.id, ["k1", "k2", "k3", "k4"], reused={"k1", "k2", "k3"})
    view = store.job_trainings(job2.id)
    assert [(v.training.key, v.reused) for v in view] == [
        ("k3", False),
        ("k1", True),
        ("k2", True),
        ("k4", False),
    ]
    assert [(v.training.key, v.reused) for v in store.job_trainings(job1.id)] == [
        ("k1", False),
        ("k2", False),
    ]
    assert store.job_trainings(store.create_job(spec()).id) == []
    with pytest.raises(TrainingNotFoundError, match="training nope not found"):
        store.link_job_trainings(job1.id, ["nope"])
    with pytest.raises(ValueError, match="reused keys must be among keys"):
        store.link_job_trainings(job1.id, ["k1"], reused={"k9"})


def test_reset_stale_trainings(store: Store) -> None:
    store.ensure_trainings({k: tspec() for k in ("run", "done", "pend", "other")})
    for key in ("run", "done", "other"):
        store.mark_training_running(key)
    store.finish_training("done", _result(0.3))
    assert store.reset_stale_trainings(["run", "done", "pend", "absent"]) == 1
    states = {k: r.state for k, r in store.get_trainings(["run", "done", "pend", "other"]).items()}
    assert states == {
        "run": TrainingState.PENDING,
        "done": TrainingState.SUCCEEDED,
        "pend": TrainingState.PENDING,
        "other": TrainingState.RUNNING,  # not passed: not touched
    }
    assert store.get_training("run").attempts == 1  # the lost attempt still counts
    assert store.reset_stale_trainings([]) == 0


def test_many_keys_span_several_chunks(store: Store) -> None:
    keys = [f"key{i:04d}" for i in range(1203)]
    assert len(store.ensure_trainings({k: tspec(seed=i) for i, k in enumerate(keys)})) == 1203
    job = store.create_job(spec())
    store.link_job_trainings(job.id, keys, reused=set(keys[::2]))
    view = store.job_trainings(job.id)
    assert [v.training.key for v in view] == keys
    assert sum(v.reused for v in view) == 602
    assert len(store.get_trainings(reversed(keys))) == 1203
    for key in keys[:700:10]:
        store.mark_training_running(key)
    assert store.reset_stale_trainings(keys) == 70


# ----------------------------------------------------------------------------------------------- checkpoints

SHA = "ab" * 32


def test_checkpoints_record_get_list_delete(store: Store) -> None:
    store.ensure_trainings({"k1": tspec(), "k2": tspec(seed=1), "k3": tspec(seed=2)})
    before = datetime.now(UTC)
    first = store.record_checkpoint("k1", uri="/runs/a/checkpoint_000000", size_bytes=1234, sha256=SHA)
    assert (first.training_key, first.uri, first.size_bytes, first.sha256) == (
        "k1",
        "/runs/a/checkpoint_000000",
        1234,
        SHA,
    )
    assert _aware_utc(first.created_at) and first.created_at >= before
    remote = "s3://bucket/runs/b/checkpoint_000000"
    store.record_checkpoint("k2", uri=remote, size_bytes=2**40, sha256="cd" * 32)
    assert store.get_checkpoint("k1") == first and store.get_checkpoint("k3") is None
    assert store.get_checkpoint("k2").size_bytes == 2**40  # a 64-bit size on both backends
    assert list(store.get_checkpoints(["k3", "k2", "k1", "absent"])) == ["k2", "k1"]  # which have weights
    assert [c.training_key for c in store.list_checkpoints()] == ["k1", "k2"]
    assert store.delete_checkpoint("k1") is True and store.delete_checkpoint("k1") is False
    assert store.get_checkpoints(["k1", "k2"]).keys() == {"k2"}


def test_first_checkpoint_wins(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    first = store.record_checkpoint("k", uri="/runs/first", size_bytes=10, sha256=SHA)
    second = store.record_checkpoint("k", uri="/runs/second", size_bytes=11, sha256="ef" * 32)
    assert second == first  # the caller sees the stored one (and deletes its own files)
    assert [c.uri for c in store.list_checkpoints()] == ["/runs/first"]


def test_checkpoints_are_checked(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    with pytest.raises(TrainingNotFoundError, match="training ghost not found"):
        store.record_checkpoint("ghost", uri="/x", size_bytes=1, sha256=SHA)
    for kwargs, message in [
        ({"uri": " ", "size_bytes": 1, "sha256": SHA}, "uri must be a non-empty"),
        ({"uri": "/x", "size_bytes": -1, "sha256": SHA}, "size_bytes must be an integer >= 0"),
        ({"uri": "/x", "size_bytes": 1, "sha256": "XYZ"}, "sha256 must be 64 lowercase hex digits"),
    ]:
        with pytest.raises(ValueError, match=message):
            store.record_checkpoint("k", **kwargs)
    assert store.list_checkpoints() == []


def test_which_checkpoints_jobs_need(store: Store) -> None:
    """Needed: linked to a queued or running job, or chosen at a budget by a succeeded job's result."""
    trainings = {
        "pair": tspec(("a1", "a2")),
        "half": TrainingSpec(dataset=DatasetRef(name="planted"), tasks=["a1", "a2"], capacity=0.5),
        "single": tspec(("a1",)),
        "run": tspec(("b1",)),
        "fail": tspec(("b2",)),
        "loose": tspec(("c1",)),
    }
    store.ensure_trainings(trainings)
    for key in trainings:
        store.record_checkpoint(key, uri=f"/runs/{key}", size_bytes=1, sha256=SHA)
    succeeded = store.create_job(spec())
    store.link_job_trainings(succeeded.id, ["pair", "half", "single"])
    store.update_job(succeeded.id, state=JobState.RUNNING)
    assert store.checkpoint_needs()["single"] == [succeeded.id]  # running: everything it links
    store.update_job(succeeded.id, state=JobState.SUCCEEDED, result=job_result(succeeded.id))  # chose a1,a2
    running, failed = store.create_job(spec()), store.create_job(spec())
    store.link_job_trainings(running.id, ["run", "pair"])
    store.update_job(running.id, state=JobState.RUNNING)
    store.link_job_trainings(failed.id, ["fail"])
    store.update_job(failed.id, state=JobState.FAILED, error="boom")
    assert store.checkpoint_needs() == {
        "pair": sorted([succeeded.id, running.id]),
        "half": [],  # same tasks, another capacity: not the chosen network
        "single": [],
        "run": [running.id],
        "fail": [],
        "loose": [],
    }


# ----------------------------------------------------------------------------------------------- schema


def test_schema_created_once_and_kept(store: Store, store_url: str) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    job = store.create_job(spec())
    with open_store(store_url) as again:
        assert again.schema_version() == SCHEMA_VERSION
        assert again.get_job(job.id) == job


def _add_note_column(conn) -> None:  # a migration from version 1 to 2, as a later release would write it
    conn.execute(text("ALTER TABLE trainings ADD COLUMN note VARCHAR(32)"))
    conn.execute(text("UPDATE trainings SET note = 'migrated'"))


def _add_index(conn) -> None:  # from version 2 to 3
    conn.execute(text("CREATE INDEX ix_trainings_note ON trainings (note)"))


def test_version_2_store_gains_the_checkpoints_and_leases_tables(store: Store, store_url: str) -> None:
    store.ensure_trainings({"k": tspec(seed=3)})
    with store._engine.begin() as conn:  # back to what a version-2 store is
        conn.execute(text("DROP TABLE checkpoints"))
        conn.execute(text("DROP TABLE leases"))
        conn.execute(text("UPDATE schema_version SET version = 2"))
    store.close()
    with open_store(store_url) as upgraded:
        assert upgraded.schema_version() == 4 == SCHEMA_VERSION
        assert upgraded.get_training("k").spec == tspec(seed=3)
        assert upgraded.list_checkpoints() == []
        upgraded.record_checkpoint("k", uri="/runs/k", size_bytes=5, sha256=SHA)
        assert upgraded.get_checkpoint("k").uri == "/runs/k"
        assert upgraded.claim_trainings(["k"], "run-1", 60) == ["k"]


# ----------------------------------------------------------------------------------------------- leases


def test_a_lease_is_held_by_one_owner_until_it_expires(store: Store) -> None:
    store.ensure_trainings({"k1": tspec(seed=1), "k2": tspec(seed=2)})
    assert store.claim_trainings(["k1", "k2"], "a", 60) == ["k1", "k2"]
    assert store.claim_trainings(["k1", "k2"], "b", 60) == []  # a holds both
    assert store.claim_trainings(["k2", "k1"], "a", 60) == [
        "k2",
        "k1",
    ]  # its own: renewed, in the order given
    assert {k: owner for k, (owner, _) in store.lease_holders(["k1", "k2"]).items()} == {"k1": "a", "k2": "a"}
    assert store.release_leases("a", ["k1"]) == 1
    assert store.claim_trainings(["k1", "k2"], "b", 60) == ["k1"]  # released: b takes it, not a's other one
    store.claim_trainings(["k2"], "a", 0.2)  # a's lease on k2 now ends in 0.2 s: a dies, it is not renewed
    time.sleep(0.3)
    assert store.claim_trainings(["k2"], "b", 60) == ["k2"]  # expired: taken over
    assert store.renew_leases("a", 60) == 0  # a lost it: nothing to renew
    assert store.renew_leases("b", 60) == 2 and store.release_leases("b") == 2
    assert store.lease_holders(["k1", "k2"]) == {}
    with pytest.raises(TrainingNotFoundError):
        store.claim_trainings(["k1", "nosuchkey"], "a", 60)


def test_many_claimants_at_once_win_each_training_once(store_url: str) -> None:
    keys = [f"k{i}" for i in range(12)]
    with open_store(store_url) as first:
        first.ensure_trainings({k: tspec(seed=i) for i, k in enumerate(keys)})
    won: dict[int, list[str]] = {}

    def claim(i: int) -> None:
        with open_store(store_url) as mine:  # each its own engine, as separate processes would have
            won[i] = mine.claim_trainings(keys[i % 3 :] + keys[: i % 3], f"run-{i}", 60)

    assert _run_threads(6, claim) == []
    claimed = [k for ks in won.values() for k in ks]
    assert sorted(claimed) == sorted(keys)  # every key won, and by exactly one claimant


@pytest.mark.parametrize("bad", ["", "x" * 129])
def test_bad_lease_arguments_are_refused(store: Store, bad: str) -> None:
    store.ensure_trainings({"k": tspec()})
    with pytest.raises(ValueError, match="lease owner must be a non-empty string"):
        store.claim_trainings(["k"], bad, 60)
    with pytest.raises(ValueError, match=r"lease seconds must be in \(0, 86400\]"):
        store.claim_trainings(["k"], "a", 0)


def test_fresh_database_opened_by_many_at_once(store_url: str) -> None:
    opened: list[Store] = []

    def open_one(i: int) -> None:
        opened.append(open_store(store_url))  # each its own engine, as separate processes would have

    try:
        assert _run_threads(4, open_one) == []
        assert [s.schema_version() for s in opened] == [SCHEMA_VERSION] * 4
        job = opened[0].create_job(spec())
        assert all(s.get_job(job.id) == job for s in opened)
    finally:
        for s in opened:
            s.close()


def test_migration_from_an_older_version(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ensure_trainings({"k": tspec(seed=7)})
    store.close()
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    monkeypatch.setitem(migrations.MIGRATIONS, SCHEMA_VERSION, _add_note_column)
    monkeypatch.setitem(migrations.MIGRATIONS, SCHEMA_VERSION + 1, _add_index)
    with open_store(store_url) as upgraded:
        assert upgraded.schema_version() == SCHEMA_VERSION + 2
        assert upgraded.get_training("k").spec == tspec(seed=7)  # data kept
        with upgraded._engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM trainings WHERE key = 'k'")).scalar() == "migrated"
            assert "ix_trainings_note" in {ix["name"] for ix in inspect(conn).get_indexes("trainings")}
    with open_store(store_url) as reopened:  # nothing runs twice
        assert reopened.schema_version() == SCHEMA_VERSION + 2


def test_failed_migration_changes_nothing(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.close()

    def half_done(conn) -> None:
        _add_note_column(conn)
        raise RuntimeError("migration bug")

    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, SCHEMA_VERSION, half_done)
    with pytest.raises(RuntimeError, match="migration bug"):
        open_store(store_url)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION)
    with open_store(store_url) as same:
        assert same.schema_version() == SCHEMA_VERSION
        with same._engine.connect() as conn:
            assert "note" not in {c["name"] for c in inspect(conn).get_columns("trainings")}  # rolled back


def test_missing_migration_is_refused(store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store.close()
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaVersionError, match=f"no migration to {SCHEMA_VERSION + 1} is registered"):
        open_store(store_url)


def test_newer_database_is_refused(store: Store, store_url: str) -> None:
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 5})
    store.close()
    with pytest.raises(SchemaVersionError, match=f"schema version {SCHEMA_VERSION + 5}, newer than"):
        open_store(store_url)


def test_foreign_tables_are_refused(store: Store, store_url: str) -> None:
    with store._engine.begin() as conn:
        conn.execute(text("DROP TABLE schema_version"))
    store.close()
    with pytest.raises(SchemaVersionError, match="not created by taskgrouping"):
        open_store(store_url)


# ----------------------------------------------------------------------------------------------- concurrency


def test_threads_racing_on_one_training_have_one_winner(store: Store) -> None:
    store.ensure_trainings({"k": tspec()})
    results: dict[int, TrainingResult | None] = {}

    def train(i: int) -> None:
        store.mark_training_running("k")
        results[i] = store.finish_training("k", _result(0.1, wall=float(i), seed=i)).result

    assert _run_threads(8, train) == []
    winners = [i for i, stored in results.items() if stored == _result(0.1, wall=float(i), seed=i)]
    assert len(winners) == 1  # exactly one finish_training stored its own result
    stored = store.get_training("k")
    assert stored.result == results[winners[0]] and stored.wall_seconds == float(winners[0])
    assert all(r == stored.result for r in results.values())
    assert 1 <= stored.attempts <= 8


def test_threads_writing_jobs_and_trainings(store: Store) -> None:
    keys = [f"shared{i}" for i in range(20)]
    job_ids: list[str] = []

    def work(i: int) -> None:
        order = keys if i % 2 else list(reversed(keys))  # opposite orders must not deadlock
        store.ensure_trainings({k: tspec() for k in order})
        job = store.create_job(spec(f"thread {i}"))
        job_ids.append(job.id)
        store.link_job_trainings(job.id, order, reused=set())
        for step in range(5):
            store.update_job(job.id, state=JobState.RUNNING, progress=Progress(done=step))
        store.list_jobs(limit=5)

    assert _run_threads(8, work) == []
    assert store.count_jobs(JobState.RUNNING) == 8 == len(set(job_ids))
    assert all(store.get_job(j).progress == Progress(done=4) for j in job_ids)
    assert all(len(store.job_trainings(j)) == 20 for j in job_ids)
    assert len(store.get_trainings(keys)) == 20


def test_cancel_from_another_thread_is_not_lost(store: Store) -> None:
    job = store.create_job(spec())
    store.update_job(job.id, state=JobState.RUNNING)

    def act(i: int) -> None:
        if i == 0:
            time.sleep(0.01)
            store.request_cancel(job.id)
        else:
            for step in range(30):
                store.update_job(job.id, progress=Progress(done=step))

    assert _run_threads(3, act) == []
    assert store.get_job(job.id).cancel_requested is True


@pytest.mark.postgres
def test_postgres_connections_killed_by_the_server_are_replaced(pg_database: str) -> None:
    """A server restart or idle time-out drops pooled connections; the next call must not fail."""
    store = open_store(pg_database)
    job = store.create_job(spec())  # leaves a pooled connection behind
    with open_store(pg_database) as killer, killer._engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert killed >= 1
    assert store.get_job(job.id) == job  # pre-ping found the dead connection and opened a new one
    store.close()


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from search.store import open_store
    from tests.search.test_store import _result, tspec
    store = open_store(sys.argv[1])
    store.ensure_trainings({f"p{i:03d}": tspec(seed=i) for i in range(int(sys.argv[2]))})
    print("ready", flush=True)
    for i in range(int(sys.argv[2])):
        store.mark_training_running(f"p{i:03d}")
        store.finish_training(f"p{i:03d}", _result(0.5, wall=0.0, seed=i))  # one short transaction each
        time.sleep(0.001)
    store.close()
    """
)


def test_reader_while_another_process_writes(store: Store, store_url: str) -> None:
    count = 30
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    keys = [f"p{i:03d}" for i in range(count)]
    seen: list[int] = []
    while writer.poll() is None:  # read while the other process commits
        time.sleep(0.005)
        done = sum(r.state is TrainingState.SUCCEEDED for r in store.get_trainings(keys).values())
        seen.append(done)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert seen == sorted(seen)  # readers see committed progress only, never going back
    assert len(seen) >= 2 and seen[0] < count  # it really read during the writes
    final = store.get_trainings(keys)
    assert all(
        r.state is TrainingState.SUCCEEDED and r.result == _result(0.5, wall=0.0, seed=int(k[1:]))
        for k, r in final.items()
    )
    if store_url.startswith("sqlite"):
        with sqlite3.connect(make_url(store_url).database) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ----------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is malformed"),
        ("mysql+pymysql://u:hunter2@localhost/db", "unsupported dialect 'mysql'"),
        ("postgresql+psycopg2://u:hunter2@localhost/db", "unsupported driver 'psycopg2'"),
        ("postgresql+psycopg://u:hunter2@localhost", "needs a database name"),
        ("", "non-empty string"),
    ],
)
def test_bad_url_is_a_clear_value_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 20)
    with pytest.raises(StoreError, match="file is not a database"):
        open_store(f"sqlite:///{path}")


def test_missing_sqlite_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist; create it"):
        open_store(f"sqlite:///{tmp_path}/no/such/dir/x.db")


def test_unreachable_server_is_a_clear_error() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="cannot use the results store") as info:
        open_store("postgresql+psycopg://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(info.value) and "TASKGROUP_DATABASE_URL" in str(info.value)
    assert isinstance(info.value, RuntimeError)  # what the CLI catches to print one line
    assert time.monotonic() - start < 15


def test_default_and_environment_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKGROUP_DATABASE_URL", raising=False)
    with open_store() as default:
        assert default.url == f"sqlite+pysqlite:///{tmp_path / 'taskgroup.db'}"  # absolute: chdir-proof
    assert (tmp_path / "taskgroup.db").is_file()
    monkeypatch.setenv("TASKGROUP_DATABASE_URL", "sqlite:///other.db")
    with open_store() as from_env:
        assert from_env.url.endswith("/other.db") and (tmp_path / "other.db").is_file()
    monkeypatch.setenv("TASKGROUP_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    with pytest.raises(StoreUnavailableError) as info:
        open_store()
    assert "postgresql+psycopg://u:***@127.0.0.1:1/x" in str(info.value)  # driver filled in, password hidden


def test_in_memory_sqlite_is_shared_by_threads() -> None:
    with open_store("sqlite://") as memory:

        def create(i: int) -> None:
            memory.create_job(spec(f"job {i}"))

        assert _run_threads(4, create) == []
        assert memory.count_jobs() == 4


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    opened = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    assert repr(opened).startswith("Store('sqlite")
    opened.close()
    with pytest.raises(StoreError, match="is closed"):
        opened.count_jobs()
