"""Ray Tune trials named by the network they train: ``sdn fidelity 0.2 seed 0``, ``s capacity 0.5 fidelity 1
seed 0``, so that Tune's output, its trial folders and the Ray dashboard say which network each trial trains
(Tune's default, ``train_trial_3f2a1_00004``, says nothing).

* :func:`network_name` is the name of one training: the tasks' short names (joined like
  :meth:`grouping.candidates.Candidate.label`: ``sdn`` for one-letter names, ``seg,depth`` otherwise), the
  capacity when it is not full size, the fidelity and the seed.
* :func:`trial_name` and :func:`trial_dirname` are Tune's ``TuneConfig(trial_name_creator=...,
  trial_dirname_creator=...)``; the folder name is the trial name made safe for every file system (letters,
  digits, ``._-``; bounded length) plus Tune's trial id, unique within a run.
* :func:`named_trainable` wraps a function trainable so that the Ray actor running it shows the trial's
  name as its ``repr`` (the dashboard's actors view, ``ray list actors --detail``). Ray records an actor's
  repr once, when the actor is created; with ``reuse_actors=True`` (STACK.md: a new trial process costs
  seconds of imports; a run without reuse measured 108 s instead of 23 s here) one actor trains several
  trials in turn, so the dashboard shows the first network the actor trained; Tune's trial names and folders
  name every one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

DIRNAME_CHARS = 80
"""Longest trial name kept in a trial's folder name (before its trial id): far below file systems' 255."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _number(value: float) -> str:
    """``0.2``, ``1``, ``0.25``: the shortest plain form of a fidelity or capacity."""
    return f"{float(value):g}"


def network_name(spec: Mapping[str, Any]) -> str:
    """The name of one training from its spec (a ``TrainingSpec`` as a dict, as the trial's config holds it):
    ``sdn fidelity 0.2 seed 0``; ``s capacity 0.5 fidelity 1 seed 0`` for a half-size network."""
    tasks = [str(t) for t in spec.get("tasks", [])]
    joined = ("" if all(len(t) == 1 for t in tasks) else ",").join(tasks) or "?"
    parts = [joined]
    capacity = float(spec.get("capacity", 1.0))
    if capacity != 1.0:
        parts.append(f"capacity {_number(capacity)}")
    parts.append(f"fidelity {_number(spec.get('fidelity', 1.0))}")
    parts.append(f"seed {int(spec.get('seed', 0))}")
    return " ".join(parts)


def _config_name(config: Mapping[str, Any]) -> str | None:
    training = config.get("training")
    if isinstance(training, Mapping) and isinstance(training.get("spec"), Mapping):
        return network_name(training["spec"])
    return None


def trial_name(trial: Any) -> str:
    """Tune's ``trial_name_creator``: the network the trial trains (Tune's own name for a foreign config)."""
    return _config_name(trial.config) or str(trial)


def safe_dirname(name: str) -> str:
    """``name`` with every run of characters outside ``A-Za-z0-9._-`` turned into one ``_``, no leading dot or
    dash or underscore, at most :data:`DIRNAME_CHARS` characters (never empty)."""
    safe = _UNSAFE.sub("_", name).lstrip("._-")[:DIRNAME_CHARS].rstrip("_")
    return safe or "trial"


def trial_dirname(trial: Any) -> str:
    """Tune's ``trial_dirname_creator``: ``sdn_fidelity_0.2_seed_0_<trial id>`` (unique within a run)."""
    return f"{safe_dirname(trial_name(trial))}_{trial.trial_id}"


class NamedTrialActor:
    """Mixin of the trial actor's class (Tune's ``__mixins__``): its repr is the trial's name.

    Tune's function-trainable class returns ``self._name`` (the function's name) as its repr; this sets it,
    per instance, to the name of the trial the actor starts with, before Ray reads the repr after
    ``__init__``. A reused actor renames itself for each later trial (Ray's record keeps the first repr)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rename()

    def reset(self, new_config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        done = super().reset(new_config, *args, **kwargs)  # type: ignore[misc]
        self._rename()
        return done

    def _rename(self) -> None:
        name = _config_name(getattr(self, "config", None) or {})
        if name is not None:
            self._name = name
            log.debug("trial %s trains %s", getattr(self, "trial_id", "?"), name)


def named_trainable(fn: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``fn`` as a new function trainable whose Ray actor is named by its trial (:class:`NamedTrialActor`);
    ``fn`` itself is left unchanged (``tune.with_resources`` sets attributes on the function it gets)."""

    def trial(config: dict[str, Any]) -> None:
        fn(config)

    trial.__name__ = getattr(fn, "__name__", "trial")
    trial.__qualname__ = trial.__name__
    trial.__doc__ = fn.__doc__
    trial.__mixins__ = (NamedTrialActor,)  # type: ignore[attr-defined]
    return trial


__all__ = [
    "NamedTrialActor",
    "named_trainable",
    "network_name",
    "safe_dirname",
    "trial_dirname",
    "trial_name",
]
