"""A run's leases on the trainings it trains: one training per network across jobs (search.store.leases).

:class:`LeaseKeeper` names the run (its ``owner``: job id, a random part, host and process), renews every
lease the run holds on a background thread every third of the lease length while the run trains, and
releases them when the run ends, however it ends. A run that dies stops renewing, and its leases expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from types import TracebackType

from search.store import Store

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews a run's leases while it lives (a context manager: enter starts the thread, exit stops it and
    releases every lease of the run)."""

    def __init__(self, store: Store, job_id: str, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        host = socket.gethostname()[:40]
        self.owner = f"{job_id}:{uuid.uuid4().hex[:8]}@{host}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._renew, name=f"leases {self.owner}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
        try:
            self.store.release_leases(self.owner)
        except Exception:  # the leases expire on their own
            log.exception("could not release the leases of %s", self.owner)

    def claim(self, keys: list[str]) -> list[str]:
        """The keys this run now holds (see :meth:`search.store.Store.claim_trainings`)."""
        return self.store.claim_trainings(keys, self.owner, self.seconds)

    def release(self, keys: list[str]) -> None:
        self.store.release_leases(self.owner, keys)

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.store.renew_leases(self.owner, self.seconds)
            except Exception:  # a store that does not answer for a moment: try again next time
                log.exception("could not renew the leases of %s", self.owner)


__all__ = ["LeaseKeeper"]
