"""Trainings run below the service's priority: every thread of the training's process is lowered to a target
niceness (set, not added), and the setting that chooses it names itself when wrong.

Niceness cannot be raised back by an unprivileged process, so every change happens in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search.manager import QueueSettings
from search.settings import DEFAULT_TRAINING_NICE, TRAINING_NICE_VAR, parse_training_nice, training_nice
from workers.priority import lower_priority

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os, threading
    from workers.priority import lower_priority

    before = os.getpriority(os.PRIO_PROCESS, 0)
    ready, stop, seen = threading.Event(), threading.Event(), {}

    def idle():  # a thread that exists before the priority is lowered (Ray's, an OpenMP pool's)
        seen["tid"] = threading.get_native_id()
        ready.set()
        stop.wait()

    thread = threading.Thread(target=idle)
    thread.start()
    ready.wait()
    first = lower_priority(%(nice)d)
    again = lower_priority(%(nice)d)  # a reused actor's next trial: still the target, not twice it
    other = os.getpriority(os.PRIO_PROCESS, seen["tid"])
    born = {}
    later = threading.Thread(target=lambda: born.update(n=os.getpriority(os.PRIO_PROCESS, 0)))
    later.start(); later.join()
    stop.set(); thread.join()
    print(json.dumps({"before": before, "first": first, "again": again, "other": other, "born": born["n"]}))
    """
)


def _run_child(nice: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD % {"nice": nice}],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread niceness is Linux's")
def test_every_thread_is_lowered_to_the_target_once() -> None:
    seen = _run_child(7)
    target = max(7, seen["before"])
    assert seen["first"] == seen["again"] == target
    assert seen["other"] == target  # a thread started before the call is lowered too
    assert seen["born"] == target  # and threads started later inherit it


def test_zero_leaves_the_priority_alone() -> None:
    seen = _run_child(0)
    assert seen["first"] == seen["again"] == seen["other"] == seen["born"] == seen["before"]


def test_negative_niceness_is_refused() -> None:
    with pytest.raises(ValueError, match="0 \\(off\\) or positive"):
        lower_priority(-1)


def test_the_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRAINING_NICE_VAR, raising=False)
    assert training_nice() == DEFAULT_TRAINING_NICE == 10
    monkeypatch.setenv(TRAINING_NICE_VAR, "0")
    assert training_nice() == 0
    assert parse_training_nice(" 19 ") == 19 and parse_training_nice("") == 10
    for bad in ("-5", "20", "ten", "1.5"):
        with pytest.raises(ValueError, match=f"{TRAINING_NICE_VAR}='{bad}': expected an integer niceness"):
            parse_training_nice(bad)


def test_the_service_validates_it_and_hands_it_to_its_drivers(tmp_path: Path) -> None:
    from api.settings import Settings

    assert Settings.from_env({}).queue().training_nice == 10
    assert Settings.from_env({TRAINING_NICE_VAR: "3"}).queue().training_nice == 3
    with pytest.raises(ValueError, match=TRAINING_NICE_VAR):
        Settings.from_env({TRAINING_NICE_VAR: "-1"})
    assert QueueSettings(training_nice=0).training_nice == 0
