"""`taskgroup show JOB_ID`: one stored job: state, progress, and its result when it has one."""

from __future__ import annotations

import argparse
from pathlib import Path

from api.commands import CliError
from api.commands.common import add_store_argument, checked_output, stored_job, write_result
from api.render import format_duration, format_result


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="show one job: state, progress, budget curve")
    p.add_argument("job_id")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", type=Path, help="write the result JSON to this file")
    add_store_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    output = checked_output(args.output)
    _, job = stored_job(args, args.job_id)
    if output is not None:
        if job.result is None:
            raise CliError(f"job {job.id} has no result yet (state {job.state})")
        write_result(output, job.result)
        print(f"result written to {output}")
    if args.format == "json":
        print(job.model_dump_json(indent=2))
        return 0
    p = job.progress
    print(f"job {job.id}  {job.state}")
    print(
        f"  dataset {job.spec.dataset.name}  tasks {','.join(job.spec.tasks)}  "
        f"approximation {job.spec.approximation}"
    )
    print(
        f"  created {job.created_at:%Y-%m-%d %H:%M:%S}  started {job.started_at or '-'}  "
        f"finished {job.finished_at or '-'}"
    )
    if p.total:
        print(
            f"  trainings {p.done}/{p.total} done ({p.reused} reused, {p.failed} failed), "
            f"elapsed {format_duration(p.elapsed_seconds)}"
        )
    if job.error:
        print(f"  error: {job.error}")
    if job.result is not None:
        print(format_result(job.result))
    return 0
