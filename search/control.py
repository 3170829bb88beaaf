"""The control state of one job run: cancel and interrupt, carried by an object instead of module globals.

* **cancel** (Ctrl-C in the CLI, ``DELETE /jobs/{id}``): stop the trainings in flight; the job ends
  ``cancelled``. A cancel may also come from another process through the store's ``cancel_requested`` flag,
  which :meth:`JobControl.stop_requested` polls (at most once per ``poll_seconds``).
* **interrupt** (the driver process is shutting down): stop the trainings in flight, but the job stays
  resumable (back to ``queued``).

The Tune stopper that polls this object is pickled into Tune's experiment state; a JobControl holds threading
events, so the stopper keeps it out of its pickled state (see :class:`search.ray_runner.CancelStopper`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class CancelFlag(Protocol):
    """Where a cancel requested by another process is read (the results store)."""

    def cancel_requested(self, job_id: str) -> bool: ...


class JobControl:
    """Cancel and interrupt flags of one run of one job (thread-safe)."""

    def __init__(self, job_id: str, poll_seconds: float = 1.0) -> None:
        self.job_id = job_id
        self.poll_seconds = poll_seconds
        self._cancel = threading.Event()
        self._interrupt = threading.Event()
        self._last_poll = 0.0
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop the run; the job ends cancelled."""
        self._cancel.set()

    def interrupt(self) -> None:
        """Stop the run; the job stays resumable."""
        self._interrupt.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def stop_requested(self, flag: CancelFlag | None = None) -> bool:
        """True once cancelled or interrupted here, or (polled) cancelled in ``flag`` by another process."""
        if self._cancel.is_set() or self._interrupt.is_set():
            return True
        if flag is None:
            return False
        with self._lock:
            if time.monotonic() - self._last_poll < self.poll_seconds:
                return False
            self._last_poll = time.monotonic()
        try:
            if flag.cancel_requested(self.job_id):
                self._cancel.set()
        except Exception:  # a store that does not answer must not stop the trainings
            log.exception("could not read the cancel flag of job %s", self.job_id)
        return self._cancel.is_set()


__all__ = ["CancelFlag", "JobControl"]
