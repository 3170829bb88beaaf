"""A job's stored trainings as its strategy's measurements (:class:`grouping.strategies.Measurement`).

The strategy decides from measurements only; the search keeps them in the results store. A succeeded training
of the plan becomes the measurement of the request it answers (tasks in the job's order, capacity, fidelity,
seed, lookahead, the round that asked), with its validation and test losses, its wall seconds, TAG's
lookahead affinity when it measured one, and whether the job reused it from the store.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from grouping.strategies import Measurement
from search.plan import Plan
from search.spec import JobSpec
from search.states import TrainingState
from search.store import JobTrainingRecord

log = logging.getLogger(__name__)


def measurements(spec: JobSpec, plan: Plan, linked: list[JobTrainingRecord]) -> list[Measurement]:
    """The measurements of the plan's succeeded trainings among ``linked`` (in link order). A training whose
    stored losses are not finite is left out (as if it had failed), with a warning naming it."""
    planned = plan.by_key()
    out: list[Measurement] = []
    for link in linked:
        record = link.training
        training = planned.get(record.key)
        if training is None or record.state != TrainingState.SUCCEEDED or record.result is None:
            continue
        result = record.result
        affinity = None
        if training.lookahead and result.lookahead is not None:
            affinity = {i: dict(row) for i, row in result.lookahead.affinity.items()}
        try:
            out.append(
                Measurement(
                    request=training.request(spec.tasks),
                    selection=dict(result.selection),
                    scoring=dict(result.scoring) or None,
                    wall_seconds=record.wall_seconds,
                    affinity=affinity,
                    reused=link.reused,
                )
            )
        except ValidationError as exc:
            log.warning("training %s left out of the search: its losses cannot be used (%s)", record.key, exc)
    return out


__all__ = ["measurements"]
