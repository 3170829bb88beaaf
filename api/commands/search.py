"""`taskgroup search`: run a job on local Ray (or RAY_ADDRESS) with a progress bar; Ctrl-C cancels cleanly.

Everything a user can get wrong is checked before Ray starts and before the job exists: the flags and the
spec (:func:`search.submit.prepare`: dataset, tasks, weighting, model, budgets, plan size), the output file,
and the resources (against this machine for a local Ray, against the cluster for RAY_ADDRESS, whose address
is probed first so a wrong one fails in seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from api.commands import CliError
from api.commands.common import (
    add_store_argument,
    checked_output,
    load_spec_file,
    open_cli_store,
    stored_job,
    write_result,
)
from api.render import ProgressBar, format_result

MAX_RETRIES = 100
APPROXIMATIONS = ["exhaustive", "esa", "hoa", "tag", "adaptive"]
"""``--approx`` choices: search.spec.APPROXIMATIONS (a test keeps them equal; importing the spec here would
cost every command its 0.7 s import)."""

SPEC_FLAGS = {
    "spec": "--spec",
    "dataset": "--dataset",
    "param": "--param",
    "tasks": "--tasks",
    "approx": "--approx",
    "approx_option": "--approx-option",
    "max_compute": "--max-compute",
    "lookahead_every": "--lookahead-every",
    "fidelity": "--fidelity",
    "budgets": "--budgets",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "weighting": "--weighting",
    "weights": "--weights",
    "seed": "--seed",
    "seeds": "--seeds",
    "cpus": "--cpus",
    "gpus": "--gpus",
    "objective": "--objective",
    "baseline_weighting": "--baseline-weighting",
    "baseline_architecture": "--baseline-architecture",
}
"""The flags that make a job's spec (argparse name -> flag): a resumed job keeps its stored spec."""


def retries(text: str) -> int:
    """``--retries``: an integer from 0 (no retry) to :data:`MAX_RETRIES`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_RETRIES:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_RETRIES}, got {value}")
    return value


def seeds(text: str) -> int | str:
    """``--seeds``: a number of seeds, or ``auto`` (the spec checks the range and the approximation)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seeds or auto, got {text!r}") from None


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="run a search job (plan, train on Ray, solve) and print the budget curve",
        description="Run a job end to end on Ray: trainings already in the store are reused; the rest run "
        "as Ray Tune trials. Ctrl-C cancels (finished trainings stay stored); --resume continues a job.",
    )
    p.add_argument("--spec", type=Path, help="a job spec file (JSON), instead of or under the flags below")
    p.add_argument("--dataset", help="dataset name (taskonomy-mini, tabular, planted)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset parameter, repeatable (VALUE parsed as JSON when it can be)",
    )
    p.add_argument("--tasks", help="comma-separated task names, e.g. s,d,n,k,e")
    p.add_argument(
        "--approx",
        choices=APPROXIMATIONS,
        help="approximation (default exhaustive): esa and hoa of the paper, tag (lookahead affinities of one "
        "all-task training), adaptive (rounds that train only what can still win); docs/strategies.md",
    )
    p.add_argument(
        "--approx-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the approximation, repeatable (VALUE parsed as JSON when it can be), e.g. "
        "batch=4 for adaptive",
    )
    p.add_argument(
        "--max-compute",
        type=float,
        metavar="F",
        help="adaptive: stop once the trainings cost this share of an exhaustive search (default 0.15)",
    )
    p.add_argument(
        "--lookahead-every", type=int, metavar="K", help="tag: a lookahead every K steps (default 10)"
    )
    p.add_argument("--fidelity", type=float, help="fraction of the full schedule (esa default 0.2)")
    p.add_argument("--budgets", help="budgets: a sweep 1:5:0.5, or a comma list 1,2,3 (default 1..n by 0.5)")
    p.add_argument("--epochs", type=int, help="full training schedule in epochs")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--weighting", help="loss weighting: equal, uncertainty, gradnorm, dwa, dtp, mgda")
    p.add_argument("--weights", metavar="T=W,...", help="per-task weights of the objective: s=2,d=1 or JSON")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--seeds",
        type=seeds,
        help="seeds per candidate (losses averaged), or auto (adaptive: more seeds only where noise decides)",
    )
    p.add_argument("--cpus", type=float, help="CPUs per training")
    p.add_argument("--gpus", type=float, help="GPUs per training")
    p.add_argument("--objective", choices=["sum", "relative"])
    _add_baseline_flags(p)
    p.add_argument(
        "--retries",
        type=retries,
        default=2,
        help=f"retries of a failing training, 0-{MAX_RETRIES} (default 2)",
    )
    p.add_argument(
        "--finalize",
        metavar="BUDGETS",
        help="budgets whose chosen networks are trained to the end with their weights kept (exportable with "
        "taskgroup export): 2 or 2,3; with --resume of a finished job, a new job that reuses its trainings",
    )
    p.add_argument(
        "--keep-weights",
        choices=["finalized", "all"],
        help="which trainings keep their weights (default: finalized ones)",
    )
    p.add_argument("--resume", metavar="JOB_ID", help="resume a stored job (its stored spec is used)")
    p.add_argument("--dashboard", action="store_true", help="start the Ray dashboard and print its URL")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", type=Path, help="write the result JSON to this file")
    add_store_argument(p)
    p.set_defaults(run=run)


def _add_baseline_flags(p: argparse.ArgumentParser) -> None:
    """``--baseline-weighting`` and ``--baseline-architecture``: the spec's ``baselines`` (comma lists)."""
    p.add_argument(
        "--baseline-weighting",
        metavar="A,B",
        help="stronger baselines: train the all-task network once more with each of these loss weighting "
        "methods (e.g. uncertainty,gradnorm,mgda) and report it among the baselines",
    )
    p.add_argument(
        "--baseline-architecture",
        metavar="X,Y",
        help="stronger baselines: train the all-task network once more as each of these architectures "
        "(e.g. cross-stitch,mtan) and report it at its cost in SNT",
    )


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_values(items: list[str], flag: str) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` flags as a dict (values parsed as JSON when they can be)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} {item!r}: expected KEY=VALUE")
        values[key] = _parse_value(value)
    return values


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The job spec as a dict: the --spec file, overridden by the flags given."""
    spec: dict[str, Any] = load_spec_file(args.spec) if args.spec else {}
    if args.dataset:
        spec["dataset"] = {"name": args.dataset, "params": spec.get("dataset", {}).get("params", {})}
    params = _key_values(args.param, "--param")
    if params:
        spec.setdefault("dataset", {"name": None, "params": {}}).setdefault("params", {}).update(params)
    options = _key_values(args.approx_option, "--approx-option")
    if options:
        spec.setdefault("approximation_options", {}).update(options)
    if args.tasks:
        spec["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    simple = {
        "approx": "approximation",
        "fidelity": "fidelity",
        "seed": "seed",
        "seeds": "seeds",
        "objective": "objective",
        "budgets": "budgets",  # a sweep 1:5:0.5 or a list 1,2,3: the one budget grammar, read by the spec
        "weights": "weights",  # s=2,d=1 or JSON: the one weight grammar
        "finalize": "finalize_budgets",  # the budget grammar too
        "max_compute": "max_compute",
        "lookahead_every": "lookahead_every",
        "keep_weights": "keep_weights",
    }
    for flag, field in simple.items():
        if getattr(args, flag) is not None:
            spec[field] = getattr(args, flag)
    training = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "weighting": args.weighting,
    }
    for field, value in training.items():
        if value is not None:
            spec.setdefault("training", {})[field] = value
    lists = {"weighting": args.baseline_weighting, "architectures": args.baseline_architecture}
    for field, value in lists.items():
        if value is not None:
            spec.setdefault("baselines", {})[field] = [v.strip() for v in value.split(",") if v.strip()]
    for field, value in {"cpus": args.cpus, "gpus": args.gpus}.items():
        if value is not None:
            spec.setdefault("resources", {})[field] = value
    if "dataset" not in spec or not spec["dataset"].get("name"):
        raise CliError("no dataset: give --dataset NAME (or a --spec file with a dataset)")
    if "tasks" not in spec:
        raise CliError("no tasks: give --tasks a,b,c (or a --spec file with tasks)")
    return spec


def _submission(args: argparse.Namespace) -> Any:
    """The validated, planned spec; everything but the remote cluster checked (Ray not started)."""
    from pydantic import ValidationError

    from grouping.validation import format_validation_error
    from search.submit import local_capacity, prepare

    remote = bool(os.environ.get("RAY_ADDRESS"))
    try:
        return prepare(spec_from_args(args), None if remote else local_capacity())
    except ValidationError as exc:
        raise CliError(f"invalid job spec: {format_validation_error(exc)}") from None
    except ValueError as exc:  # SpecError: a field the dataset, the registry or the machine refuses
        raise CliError(f"invalid job spec: {exc}") from None


def _connect(dashboard: bool) -> Any:
    from search.ray_runner import ensure_ray

    try:
        return ensure_ray(dashboard=dashboard)
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise CliError(" ".join(str(exc).split())) from None


def _new_job(args: argparse.Namespace) -> Any:
    submission = _submission(args)  # everything checked before the store opens and Ray is even imported
    from search.ray_runner import cluster_capacity
    from search.submit import check_resources, submit_job

    store = open_cli_store(args)
    info = _connect(args.dashboard)
    try:
        check_resources(submission.spec.resources, cluster_capacity())
    except ValueError as exc:
        raise CliError(f"invalid job spec: {exc}") from None
    job = submit_job(store, submission)
    plan = submission.plan
    print(
        f"job {job.id}: {plan.network_trainings} trainings of {plan.candidates} candidates "
        f"({plan.approximation}), estimated {plan.snt_epochs:g} SNT-epochs",
        file=sys.stderr,
    )
    return store, job, info


def _resumed_job(args: argparse.Namespace) -> Any:
    from search.states import JobState

    given = [flag for name, flag in SPEC_FLAGS.items() if getattr(args, name) not in (None, [])]
    if given:
        raise CliError(
            f"--resume continues job {args.resume} with its stored spec: drop {', '.join(given)} (or start "
            "a new search without --resume)"
        )
    store, job = stored_job(args, args.resume)
    if args.finalize is not None or args.keep_weights is not None:
        return _finalize_job(args, store, job)
    if job.state in (JobState.CANCELLED, JobState.FAILED):  # back in the queue; finished trainings kept
        job = store.update_job(job.id, state=JobState.QUEUED)
    print(f"resuming job {job.id} ({job.state})", file=sys.stderr)
    return store, job, _connect(args.dashboard)


def _finalize_job(args: argparse.Namespace, store: Any, job: Any) -> Any:
    """``--resume JOB --finalize B``: a new job with JOB's stored spec and these budgets finalized (a
    finished job's spec stays as it ran); every training JOB stored is reused, so only the finalize
    trainings (and whatever JOB had not finished) run."""
    from pydantic import ValidationError

    from grouping.budgets import parse_budgets
    from grouping.validation import format_validation_error
    from search.submit import local_capacity, prepare, submit_job

    if not job.state.is_final:
        raise CliError(
            f"job {job.id} is {job.state}: --finalize starts from a finished job; wait for it "
            f"(taskgroup show {job.id}) or resume it without --finalize"
        )
    spec = job.spec.model_dump(mode="json")
    if args.finalize is not None:
        try:
            asked = parse_budgets(args.finalize)
        except ValueError as exc:
            raise CliError(f"--finalize: {str(exc).removeprefix('budgets: ')}") from None
        spec["finalize_budgets"] = sorted({*job.spec.finalize_budgets, *asked})
    if args.keep_weights is not None:
        spec["keep_weights"] = args.keep_weights
    remote = bool(os.environ.get("RAY_ADDRESS"))
    try:
        submission = prepare(spec, None if remote else local_capacity())
    except ValidationError as exc:
        raise CliError(f"--finalize: {format_validation_error(exc)}") from None
    except ValueError as exc:
        raise CliError(f"--finalize: {exc}") from None
    new = submit_job(store, submission)
    budgets = ", ".join(f"{b:g}" for b in submission.spec.finalize_budgets)
    print(
        f"job {job.id} is {job.state}: finalizing {budgets} SNT in a new job {new.id} (its trainings are "
        "reused)",
        file=sys.stderr,
    )
    return store, new, _connect(args.dashboard)


def print_dashboard(url: str | None, *, cluster: bool) -> None:
    """The Ray dashboard's URL and, on the next line, how to authenticate to it (where the token is; the
    token itself is never printed)."""
    from search.dashboard import dashboard_auth_hint

    print(f"Ray dashboard: {url or '(not available)'}", file=sys.stderr)
    print(f"  {dashboard_auth_hint(cluster=cluster)}", file=sys.stderr)


def _run(args: argparse.Namespace, store: Any, job_id: str) -> Any:
    """Run the job with a progress bar; the first Ctrl-C cancels it cleanly, a second one aborts."""
    from search.control import JobControl
    from search.ray_runner import TuneRunner
    from search.run import run_job

    control = JobControl(job_id)
    bar = ProgressBar(sys.stderr)
    interrupted = {"count": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        print("\ncancelling: stopping the trainings in flight (Ctrl-C again to abort)", file=sys.stderr)
        control.cancel()
        store.request_cancel(job_id)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return run_job(
            store,
            job_id,
            runner=TuneRunner(),
            control=control,
            max_retries=args.retries,
            on_progress=bar.update,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C is ours: it cancels the job cleanly
    output = checked_output(args.output)
    if args.resume:
        store, job, info = _resumed_job(args)
    else:
        store, job, info = _new_job(args)
    if args.dashboard:
        print_dashboard(info.dashboard_url, cluster=bool(os.environ.get("RAY_ADDRESS")))
    started = time.monotonic()
    final = _run(args, store, job.id)
    print(f"job {final.id}: {final.state} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    if final.result is None:
        if final.error:
            print(f"error: {final.error}", file=sys.stderr)
        if final.state == "cancelled":
            print(
                f"finished trainings are stored; resume with: taskgroup search --resume {final.id}",
                file=sys.stderr,
            )
            return 130
        return 1
    if output is not None:
        write_result(output, final.result)
        print(f"result written to {output}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(final.result.model_dump(mode="json"), indent=2))
    else:
        print(format_result(final.result))
    return 0
