"""`taskgroup jobs`: list the jobs in the results store."""

from __future__ import annotations

import argparse
import json

from api.commands import CliError
from api.commands.common import add_store_argument, existing_cli_store
from search.states import JobState


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="list stored jobs (newest first)")
    p.add_argument("--state", choices=[s.value for s in JobState], help="only jobs in this state")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    add_store_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    store = existing_cli_store(args)
    jobs = [] if store is None else store.list_jobs(state=args.state, limit=min(args.limit, 1000))
    if args.format == "json":
        print(json.dumps([j.model_dump(mode="json") for j in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs" + (f" in state {args.state}" if args.state else ""))
        return 0
    print(f"{'id':<34} {'state':<10} {'created':<20} {'progress':<14} dataset / tasks / approximation")
    for job in jobs:
        p = job.progress
        progress = f"{p.done}/{p.total or '?'}" + (f" ({p.failed} failed)" if p.failed else "")
        spec = job.spec
        what = f"{spec.dataset.name} / {','.join(spec.tasks)} / {spec.approximation}"
        print(f"{job.id:<34} {job.state:<10} {job.created_at:%Y-%m-%d %H:%M:%S} {progress:<14} {what}")
    return 0
