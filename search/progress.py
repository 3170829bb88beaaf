"""A running job's progress: counts of its trainings from training events, and the round it is in.

:class:`ProgressTracker` turns the events of the Ray trials (started, succeeded, failed; ``reused`` when
another job trained a training this one waited for) into a :class:`~search.records.Progress`. A training
reported twice counts once. A search in rounds (adaptive) adds each round's trainings as it decides them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from search.records import Progress


class ProgressTracker:
    """A running job's counts, from sets of training keys: a training reported twice counts once."""

    def __init__(
        self, keys: Iterable[str] = (), succeeded: Iterable[str] = (), reused: int = 0, phase: str = "search"
    ) -> None:
        self.known = set(keys)
        self.phase = phase
        self.reused = reused
        self.succeeded = set(succeeded)
        self.trained_now: set[str] = set()
        self.failed: set[str] = set()
        self.running: set[str] = set()
        self.round: int | None = None
        self.why: str | None = None
        self.round_trainings: list[str] = []
        self.started = time.monotonic()
        self.lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.known)

    def add_round(
        self,
        index: int,
        why: str,
        keys: Iterable[str],
        labels: list[str],
        succeeded: Iterable[str],
        reused: int,
    ) -> None:
        """A round begins: its trainings join the counts (``succeeded``: those already done, ``reused`` of
        them found in the store)."""
        with self.lock:
            new = set(keys) - self.known
            self.known |= new
            done = set(succeeded) & new
            self.succeeded |= done
            self.reused += reused
            self.round, self.why, self.round_trainings = index, why, list(labels)

    def record(self, key: str, kind: str) -> bool:
        """Apply one training event; True when the counts of finished trainings changed."""
        with self.lock:
            if kind == "started":
                self.running.add(key)
                self.failed.discard(key)
                return False
            if kind == "reused":  # trained meanwhile by another job: counted as reused
                new = key not in self.succeeded
                self.succeeded.add(key)
                self.failed.discard(key)
                self.reused += new
                return new
            if kind not in ("succeeded", "failed"):
                return False
            self.running.discard(key)
            if kind == "succeeded":
                new = key not in self.succeeded
                self.succeeded.add(key)
                self.trained_now.add(key)
                self.failed.discard(key)
                return new
            if key in self.succeeded:  # a late failure of a retried trial that had already succeeded
                return False
            self.failed.add(key)
            return True

    def snapshot(self) -> Progress:
        with self.lock:
            elapsed = time.monotonic() - self.started
            done, failed, running = len(self.succeeded), len(self.failed), len(self.running)
            remaining = max(0, self.total - done - failed)
            estimate = None
            if remaining == 0:
                estimate = 0.0
            elif self.trained_now:
                estimate = round(elapsed / len(self.trained_now) * remaining, 1)
            return Progress(
                total=self.total,
                done=done,
                reused=self.reused,
                trained=max(0, done - self.reused),
                running=running,
                failed=failed,
                pending=max(0, remaining - running),
                phase=self.phase,
                round=self.round,
                why=self.why,
                round_trainings=self.round_trainings,
                elapsed_seconds=round(elapsed, 1),
                estimate_seconds=estimate,
            )


__all__ = ["ProgressTracker"]
