"""`taskgroup search`, `jobs` and `show`: bad input is one line and exit 2; a search runs on the session's
real Ray and writes the result JSON; Ctrl-C cancels cleanly and --resume trains only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.cli import main
from search.store import JobState, TrainingState, open_store

PLANTED = ["--dataset", "planted", "--param", "groups=[2, 1]", "--tasks", "a1,a2,b1", "--epochs", "6"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "nope", "--tasks", "a,b"], "unknown dataset 'nope'; choose one of"),
        (["--dataset", "planted", "--tasks", "a1,zz"], "['zz'] are not tasks of dataset 'planted'"),
        (["--dataset", "planted"], "no tasks: give --tasks"),
        (["--tasks", "a1,a2"], "no dataset: give --dataset"),
        (
            ["--dataset", "planted", "--tasks", "a1,a2", "--param", "groups"],
            "--param 'groups': expected KEY=VALUE",
        ),
        (["--dataset", "planted", "--tasks", "a1,a2", "--budgets", "0.2"], "below the cheapest selection"),
        (["--dataset", "planted", "--tasks", "a1,a2", "--budgets", "1:x"], "budgets: expected START:STOP"),
        (["--spec", "/nonexistent/job.json"], "/nonexistent/job.json: cannot read the spec file"),
        (["--resume", "nosuchjob"], "job nosuchjob not found"),
        (["--dataset", "planted", "--tasks", "a1,a2", "--seeds", "auto"], "seeds: auto is for the adaptive"),
        (["--dataset", "planted", "--tasks", "a1,a2", "--max-compute", "0.1"], "max_compute is the adaptive"),
        (
            ["--dataset", "planted", "--tasks", "a1,a2", "--approx", "adaptive", "--approx-option", "batch"],
            "--approx-option 'batch': expected KEY=VALUE",
        ),
        (
            ["--dataset", "planted", "--tasks", "a1,a2", "--approx", "adaptive", "--approx-option", "nope=1"],
            "nope",
        ),
    ],
)
def test_bad_search_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "search", *argv, "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and out == ""
    assert err.startswith("taskgroup search: error: ") and err.count("\n") == 1
    assert message in err


def test_strategy_flags_make_the_spec() -> None:
    from api.cli import build_parser
    from api.commands.search import APPROXIMATIONS
    from api.commands.search import spec_from_args as build
    from search.spec import APPROXIMATIONS as SPEC_APPROXIMATIONS

    assert list(SPEC_APPROXIMATIONS) == APPROXIMATIONS
    argv = ["search", *PLANTED, "--approx", "adaptive", "--max-compute", "0.2", "--seeds", "auto"]
    args = build_parser().parse_args([*argv, "--approx-option", "batch=3", "--approx-option", "start=pairs"])
    spec = build(args)
    assert spec["approximation"] == "adaptive" and spec["max_compute"] == 0.2 and spec["seeds"] == "auto"
    assert spec["approximation_options"] == {"batch": 3, "start": "pairs"}
    args = build_parser().parse_args(["search", *PLANTED, "--approx", "tag", "--lookahead-every", "5"])
    assert build(args)["lookahead_every"] == 5


def test_bad_spec_file_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    spec.write_text('{"dataset": {"name": "planted"},\n "tasks": [a1]}\n')
    code, _, err = run_cli(capsys, "search", "--spec", str(spec), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and f"{spec}:2: not valid JSON" in err


def test_show_and_jobs_on_an_empty_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert run_cli(capsys, "jobs", "--db", db) == (0, "no jobs\n", "")
    code, _, err = run_cli(capsys, "show", "nosuchjob", "--db", db)
    assert code == 2 and "job nosuchjob not found" in err


@pytest.mark.ray
@pytest.mark.slow
def test_search_writes_the_result_and_jobs_show_list_it(
    ray_session: None, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGROUP_RUNS_DIR", str(tmp_path / "runs"))
    db = f"sqlite:///{tmp_path / 'x.db'}"
    output = tmp_path / "out" / "grouping.json"
    code, out, err = run_cli(capsys, "search", *PLANTED, "--budgets", "1:2", "--db", db, "-o", str(output))
    assert code == 0, err
    result = json.loads(output.read_text())
    assert [r["budget"] for r in result["curve"]] == [1.0, 1.5, 2.0]
    assert "budget   cost  selection    scoring  networks (served tasks)" in out
    assert "10 trainings of 10 candidates" in err and f"result written to {output}" in err

    code, out, _ = run_cli(capsys, "jobs", "--db", db)
    assert code == 0 and result["job_id"] in out and "succeeded" in out and "10/10" in out
    code, out, _ = run_cli(capsys, "show", result["job_id"], "--db", db, "--format", "json")
    assert code == 0 and json.loads(out)["result"]["curve"] == result["curve"]

    # the same search again: every training reused, nothing trained
    code, _, err = run_cli(capsys, "search", *PLANTED, "--budgets", "1:2", "--db", db, "--format", "json")
    assert code == 0 and "10/10 trainings (10 reused" in err


@pytest.mark.ray
@pytest.mark.slow
def test_ctrl_c_cancels_and_resume_trains_only_what_is_missing(ray_session: None, tmp_path: Path) -> None:
    import ray

    db = f"sqlite:///{tmp_path / 'x.db'}"
    env = dict(
        os.environ,
        RAY_ADDRESS=ray.get_runtime_context().gcs_address,
        TASKGROUP_RUNS_DIR=str(tmp_path / "runs"),
    )
    argv = [
        sys.executable,
        "-m",
        "api.cli",
        "search",
        "--dataset",
        "planted",
        "--tasks",
        "a1,a2,b1,b2",
        "--epochs",
        "30",
        "--db",
        db,
    ]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = open_store(db)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            jobs = store.list_jobs()
            if jobs and any(
                jt.training.state == TrainingState.SUCCEEDED for jt in store.job_trainings(jobs[0].id)
            ):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    (job,) = store.list_jobs()
    assert job.state == JobState.CANCELLED
    assert f"taskgroup search --resume {job.id}" in err
    done = {
        jt.training.key for jt in store.job_trainings(job.id) if jt.training.state == TrainingState.SUCCEEDED
    }
    assert 1 <= len(done) < 19

    before = {jt.training.key: jt.training for jt in store.job_trainings(job.id)}
    resumed = subprocess.run(
        [*argv[:3], "search", "--resume", job.id, "--db", db, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming job {job.id} (queued)" in resumed.stderr
    assert json.loads(resumed.stdout)["job_id"] == job.id
    after = {jt.training.key: jt.training for jt in store.job_trainings(job.id)}
    assert all(t.state == TrainingState.SUCCEEDED for t in after.values())
    for key in done:  # kept, not retrained
        assert after[key].finished_at == before[key].finished_at and after[key].attempts == 1
    assert store.get_job(job.id).state == JobState.SUCCEEDED


# ------------------------------------------------------------ refused before Ray starts or a job exists


def run_isolated(tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, bool]:
    """`taskgroup` in a fresh interpreter: exit code, stderr, and whether it imported ray at all."""
    code = (
        "import sys\n"
        "from api.cli import main\n"
        f"code = main({argv!r})\n"
        "print('RAY', 'ray' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    lines = proc.stderr.strip().splitlines()
    return proc.returncode, "\n".join(lines[:-1]), lines[-1] == "RAY True"


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--weighting", "no-such-method"],
            "training.weighting: unknown method 'no-such-method'; choose one of",
        ),
        (["--cpus", "512"], "resources.cpus: 512 CPUs per training, but this machine has"),
        (["--gpus", "1"], "there is no GPU: set gpus to 0"),
        (["--budgets", "0.1"], "below the cheapest selection"),
        (["-o", "{tmp}/a-file/out.json"], "a-file/out.json: cannot write"),
    ],
)
def test_bad_search_input_is_refused_before_ray_starts(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    db = tmp_path / "x.db"
    argv = ["search", *PLANTED, "--db", f"sqlite:///{db}", *(a.format(tmp=tmp_path) for a in extra)]
    code, err, ray_imported = run_isolated(tmp_path, argv, {"RAY_ADDRESS": ""})
    assert code == 2 and err.count("\n") == 0 and err.startswith("taskgroup search: error: ")
    assert message.format(tmp=tmp_path) in err
    assert not ray_imported  # refused before Ray was even imported
    assert not db.exists()  # nor was the store opened: no job was created


def test_retries_must_be_a_small_non_negative_integer(capsys: pytest.CaptureFixture[str]) -> None:
    for bad, reason in (("-1", "must be between 0 and 100, got -1"), ("x", "expected an integer, got 'x'")):
        with pytest.raises(SystemExit) as info:
            main(["search", *PLANTED, "--retries", bad])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"argument --retries: {reason}" in err


def test_an_unreachable_ray_address_fails_at_once_naming_it(tmp_path: Path) -> None:
    argv = ["search", *PLANTED, "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    code, err, _ = run_isolated(tmp_path, argv, {"RAY_ADDRESS": "127.0.0.1:9"})  # nothing listens on port 9
    assert code == 2 and err.count("\n") == 0
    assert "cannot reach the Ray cluster at 127.0.0.1:9 (RAY_ADDRESS or --address)" in err


def test_resume_refuses_the_flags_it_would_ignore(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "search", "--resume", "abc", "--tasks", "a1,b1", "--epochs", "3")
    assert code == 2
    assert "--resume continues job abc with its stored spec: drop --tasks, --epochs" in err


def test_reading_commands_never_create_a_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKGROUP_DATABASE_URL", raising=False)
    assert run_cli(capsys, "jobs") == (0, "no jobs\n", "")
    for argv in (["show", "x"], ["report", "x"], ["search", "--resume", "x"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "job x not found: there is no results store there yet" in err
    assert list(tmp_path.iterdir()) == []  # no taskgroup.db, no report file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file (expected a result as UTF-8 JSON)"),
        (b'{"tasks": [1', ":1: not valid JSON"),
        (b"[1, 2]", "not a job result or a budget curve"),
        (b'{"curve": "x"}', "not a job result or a budget curve: tasks: Field required"),
    ],
)
def test_report_of_a_bad_result_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "report", "x", "--result", str(path), "-o", str(tmp_path / "r.html"))
    assert code == 2 and err.count("\n") == 1 and message in err
