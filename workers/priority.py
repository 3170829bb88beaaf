"""Lower the scheduling priority of the process a training runs in, so that the service stays responsive.

A training is batch work and an HTTP request is interactive, but both compete for the same cores when the
service and its Ray trainings share a machine. The kernel's answer is niceness: at niceness 10 a thread gets
about a tenth of the CPU share of a niceness-0 thread when both want a core, and all of it when the core is
otherwise idle, so trainings lose no speed on an idle machine.

On Linux niceness belongs to each thread (``nice(2)`` and ``setpriority(PRIO_PROCESS, 0)`` change the calling
thread only), and a Ray Tune function trainable runs in a thread of its actor, next to threads created
earlier (an OpenMP pool of a previous trial of the same reused actor, Ray's own). So every thread of the
process is lowered (``/proc/self/task``); threads created later inherit the niceness of their creator.
Niceness is set as a target, not added: a reused actor that starts its tenth trial stays at the target.

Ray itself lowers its worker processes (``RAY_worker_niceness``, 15 by default on Linux in Ray 2.60), but only
the threads created after its start-up: its core worker's threads stay at the raylet's priority (measured: 20
of the 25 threads of a training actor at niceness 0). A thread already at or above the target is left as it is
(an unprivileged process cannot raise a priority back anyway).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

TASKS = Path("/proc/self/task")


def _thread_ids() -> list[int]:
    """Every thread of this process (Linux), else only the calling one (0)."""
    try:
        return sorted(int(entry.name) for entry in TASKS.iterdir() if entry.name.isdigit())
    except OSError:
        return [0]


def lower_priority(niceness: int) -> int:
    """Bring every thread of this process to at least ``niceness`` (0: leave the priority as it is); the
    calling thread's niceness afterwards. A thread that ended meanwhile, or that the operating system does not
    let us change, is left as it is (logged): a training is never refused for its priority."""
    if niceness < 0:
        raise ValueError(f"niceness must be 0 (off) or positive, got {niceness}")
    if niceness == 0:
        return os.getpriority(os.PRIO_PROCESS, 0)
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < niceness:
        os.nice(niceness - current)  # the calling thread: the one that trains
    for thread in _thread_ids():
        try:
            if os.getpriority(os.PRIO_PROCESS, thread) < niceness:
                os.setpriority(os.PRIO_PROCESS, thread, niceness)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        except OSError as exc:
            log.warning("could not lower the priority of thread %d to niceness %d: %s", thread, niceness, exc)
    return os.getpriority(os.PRIO_PROCESS, 0)


__all__ = ["lower_priority"]
