"""Export a budget of a job as a bundle: its chosen networks, with their kept weights, in one zip.

The networks are the job's grouping at the budget (``JobResult.curve``); the weights of each are taken
from the trainings linked to the job (``job_trainings``) of the same task set and capacity that kept a
checkpoint (``checkpoints``): the highest fidelity first, then the lowest seed. A chosen network without kept
weights (the budget was not finalized, or HOA predicted the network and nothing trained it) stops the export
with
:class:`NotFinalizedError`, whose message says how to finalize the budget (:data:`FINALIZE_HINT`).

``taskgroup export`` and ``GET /jobs/{id}/models`` are adapters of :func:`export_bundle`. Torch is imported
only when a bundle is built (``workers.bundle``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from grouping.results import Grouping, Network
from search.states import TrainingState
from search.store import CheckpointRecord, JobRecord, Store, TrainingRecord

if TYPE_CHECKING:
    from workers.bundle import BundleManifest

__all__ = [
    "BUDGET_TOLERANCE",
    "FINALIZE_HINT",
    "ChosenNetwork",
    "ExportError",
    "NotFinalizedError",
    "chosen_networks",
    "export_bundle",
    "finalize_hint",
]

BUDGET_TOLERANCE = 1e-9

FINALIZE_HINT = (
    "finalize it: resubmit the job with finalize_budgets: [{budget}], "
    "or run: taskgroup search --resume {job_id} --finalize {budget}"
)
"""How to get kept weights for a budget (``str.format`` with ``job_id`` and ``budget``); every face that says
a budget has no weights says this (see :func:`finalize_hint`)."""


def finalize_hint(job_id: str, budget: float) -> str:
    """:data:`FINALIZE_HINT` for one job and budget."""
    return FINALIZE_HINT.format(job_id=job_id, budget=f"{budget:g}")


class ExportError(ValueError):
    """A budget that cannot be exported, weights aside: the job has no result, or not this budget."""


class NotFinalizedError(LookupError):
    """Chosen networks of the budget have no kept weights; ``missing`` names them, the message says how to
    finalize the budget."""

    def __init__(self, job_id: str, budget: float, missing: list[str]) -> None:
        self.job_id, self.budget, self.missing = job_id, budget, missing
        super().__init__(
            f"budget {budget:g} of job {job_id} was not finalized: network(s) {', '.join(missing)} have no "
            f"kept weights; {finalize_hint(job_id, budget)}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ChosenNetwork:
    """A chosen network of a grouping, the training whose weights serve it, and their checkpoint (None when
    nothing linked to the job kept weights for it)."""

    network: Network
    training: TrainingRecord | None
    checkpoint: CheckpointRecord | None


def _grouping(job: JobRecord, budget: float) -> Grouping:
    if job.result is None:
        state = job.state.value
        raise ExportError(f"job {job.id} has no result (it is {state}); export it once it has succeeded")
    try:
        return job.result.at(budget, tolerance=BUDGET_TOLERANCE)
    except KeyError:
        known = ", ".join(f"{g.budget:g}" for g in job.result.curve)
        message = f"budget {budget:g} is not a budget of job {job.id}; choose one of: {known}"
        raise ExportError(message) from None


def _same_network(record: TrainingRecord, network: Network) -> bool:
    spec = record.spec
    return set(spec.tasks) == set(network.tasks) and abs(spec.capacity - network.capacity) <= BUDGET_TOLERANCE


def chosen_networks(store: Store, job: JobRecord, budget: float) -> tuple[Grouping, list[ChosenNetwork]]:
    """The job's grouping at ``budget`` and, for each chosen network, the kept weights that serve it (module
    docstring); :class:`ExportError` for a job without result or a budget it does not have."""
    grouping = _grouping(job, budget)
    linked = store.job_trainings(job.id)
    trainings = [link.training for link in linked if link.training.state == TrainingState.SUCCEEDED]
    kept = store.get_checkpoints([t.key for t in trainings])
    chosen = []
    for network in (n for n in grouping.networks if n.serves):  # one serving nothing is not needed to predict
        weighted = [t for t in trainings if _same_network(t, network) and t.key in kept]
        best = max(weighted, key=lambda t: (t.spec.fidelity, -t.spec.seed), default=None)
        chosen.append(ChosenNetwork(network, best, None if best is None else kept[best.key]))
    return grouping, chosen


def export_bundle(store: Store, job_id: str, budget: float, output: Path | IO[bytes]) -> BundleManifest:
    """Write the bundle of ``budget`` of job ``job_id`` to ``output`` and return its manifest.

    Raises :class:`~search.store.JobNotFoundError` (a KeyError), :class:`ExportError` (no result, unknown
    budget), :class:`NotFinalizedError` (chosen networks without kept weights: the message says how to
    finalize), :class:`~search.weights.WeightsError` (kept weights missing from storage or altered) and
    ``workers.bundle.BundleBuildError`` / ``workers.checkpoint.CheckpointError`` (weights that cannot make a
    bundle): all ValueErrors or LookupErrors with a one-line message.
    """
    from search.weights import read_weights
    from workers.bundle import NetworkSource, build_bundle

    job = store.get_job(job_id)
    grouping, chosen = chosen_networks(store, job, budget)
    missing = [c.network.label for c in chosen if c.checkpoint is None]
    if missing:
        raise NotFinalizedError(job.id, grouping.budget, missing)
    sources = []
    for choice in chosen:
        assert choice.checkpoint is not None and choice.training is not None
        sources.append(
            NetworkSource(
                checkpoint=read_weights(choice.checkpoint),
                serves=list(choice.network.serves),
                label=choice.network.label,
                cost=choice.network.cost,
                training_key=choice.training.key,
                where=f"network {choice.network.label} (training {choice.training.key})",
            )
        )
    return build_bundle(
        sources,
        output,
        job_id=job.id,
        budget=grouping.budget,
        job_spec=job.spec.model_dump(mode="json"),
        grouping=grouping.model_dump(mode="json"),
    )
