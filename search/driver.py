"""A job's driver as its own process: ``python -m search.driver JOB_ID [--db URL] [--address RAY]``.

The service runs each job in a driver process of its own, connected to the service's Ray cluster: Tune
allows one ``fit()`` at a time per process, so separate drivers let several jobs train at once while
Ray shares the cluster's resources between all their trials. The job's state lives in the store, so a
driver that dies is replaced by a new one that resumes the job. A driver runs at the trainings' niceness
(``TASKGROUP_TRAINING_NICE``): Tune's control loop is batch work, and the service beside it is interactive.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from search.control import JobControl
from search.joblog import install, set_process_job
from search.ray_runner import TuneRunner, ensure_ray
from search.run import run_job
from search.settings import training_nice
from search.store import JobState, open_store
from workers.priority import lower_priority

log = logging.getLogger("search.driver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.driver", description=__doc__)
    parser.add_argument("job_id")
    parser.add_argument("--db", help="results store URL (default: $TASKGROUP_DATABASE_URL)")
    parser.add_argument("--address", help="Ray address (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args(argv)
    set_process_job(args.job_id)  # every line of this process says job=<id>, whichever thread logs it
    logging.basicConfig(level=logging.INFO, handlers=[install(logging.StreamHandler())])
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    store = open_store(args.db)
    control = JobControl(args.job_id)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # SIGTERM/SIGINT: stop the trials in flight but do NOT cancel the job: it stays resumable.
        log.info("driver of job %s got signal %d: stopping", args.job_id, signum)
        control.interrupt()

    lower_priority(training_nice())  # a job's driver is batch work too: below the service, like its trials
    ensure_ray(address=args.address)  # ray.init() installs its own SIGTERM handler: ours goes after it
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    final = run_job(store, args.job_id, runner=TuneRunner(), control=control, max_retries=args.retries)
    log.info("job %s: %s", args.job_id, final.state)
    return 0 if final.state is JobState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
