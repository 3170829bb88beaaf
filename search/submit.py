"""Submitting a job: validate everything a user can get wrong, before the job exists, then record it.

:func:`prepare` reads the spec once (its own validation: budgets, weights, capacity ladder), checks the loss
weighting method and its options against the registry, builds the dataset once (its parameters; a tabular
file is read, so missing columns show now), checks the tasks, builds the model family (its options; every
capacity must be reachable by the widths), checks the stronger baselines' weighting methods and
architectures (those that apply to the dataset's inputs), plans the trainings (a plan too large is refused
with a cheaper approximation named) and checks the resources against what the cluster (or this machine, for
a local Ray not started yet) can give one training. :func:`submit_job` stores the job with its whole plan.
Problems that are not the spec's own pydantic errors are :class:`SpecError` s naming the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from search.baselines import priced
from search.plan import Plan, make_plan
from search.spec import JobSpec, Resources
from search.store import JobRecord, Store
from workers.datasets import Dataset, get_dataset


class SpecError(ValueError):
    """A job spec that cannot work: ``field`` (dotted, e.g. ``resources.cpus``) and what to do about it.
    ``str()`` is ``"field: problem"``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ClusterCapacity(BaseModel):
    """What one training can get: the CPUs and GPUs of the largest node (``where`` names it in messages)."""

    cpus: float = Field(ge=0)
    gpus: float = Field(ge=0)
    where: str = "the largest Ray node"


def local_capacity(num_cpus: int | None = None) -> ClusterCapacity:
    """This machine, as a local Ray would see it (before starting one): its CPUs (or ``num_cpus``) and
    CUDA GPUs."""
    import torch

    cpus = float(num_cpus if num_cpus is not None else (os.cpu_count() or 1))
    return ClusterCapacity(cpus=cpus, gpus=float(torch.cuda.device_count()), where="this machine")


def check_resources(resources: Resources, capacity: ClusterCapacity) -> None:
    """SpecError for per-training resources that no node can ever provide."""
    if resources.cpus > capacity.cpus:
        raise SpecError(
            "resources.cpus",
            f"{resources.cpus:g} CPUs per training, but {capacity.where} has {capacity.cpus:g}; ask for "
            f"at most {capacity.cpus:g}",
        )
    if resources.gpus > capacity.gpus:
        hint = "; there is no GPU: set gpus to 0" if capacity.gpus == 0 else ""
        raise SpecError(
            "resources.gpus",
            f"{resources.gpus:g} GPUs per training, but {capacity.where} has {capacity.gpus:g}{hint}",
        )


@dataclass(frozen=True)
class Submission:
    """A job ready to be stored: its validated spec, its dataset (built once) and its whole plan."""

    spec: JobSpec
    dataset: Dataset
    plan: Plan


def build_dataset(spec: JobSpec) -> Dataset:
    """The spec's dataset with validated parameters, offering every task of the job; SpecError otherwise."""
    try:
        dataset = get_dataset(spec.dataset.name, spec.dataset.params)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        raise SpecError("dataset" if field == "dataset" else "dataset.params", problem or str(exc)) from None
    known = [t.name for t in dataset.tasks()]
    unknown = [t for t in spec.tasks if t not in known]
    if unknown:
        raise SpecError(
            "tasks", f"{unknown} are not tasks of dataset {spec.dataset.name!r}; it offers {', '.join(known)}"
        )
    return dataset


def check_weighting(name: str, field: str = "training.weighting") -> Any:
    """The loss weighting method ``name`` of the registry (its class); SpecError at ``field`` if unknown."""
    from workers.weighting import WEIGHTINGS

    method = WEIGHTINGS.get(name)
    if method is None:
        raise SpecError(field, f"unknown method {name!r}; choose one of {', '.join(sorted(WEIGHTINGS))}")
    return method


def check_training(spec: JobSpec) -> None:
    """The loss weighting method and its options, against the registry (they would fail every training)."""
    settings = spec.training
    method = check_weighting(settings.weighting)
    try:
        method.parse_options(dict(settings.weighting_options))
    except ValueError as exc:
        raise SpecError("training.weighting_options", str(exc)) from None


def check_architecture(
    name: str, options: dict[str, Any], input_kind: str, field: str = "training.model.architecture"
) -> None:
    """The architecture (``training.model``, or a baseline's at ``field``): a name of the registry that
    applies to the dataset's inputs, with options it takes."""
    from workers.models import ARCHITECTURES, architectures_for

    entry = ARCHITECTURES.get(name)
    if entry is None:
        known = ", ".join(sorted(ARCHITECTURES))
        problem = f"unknown architecture {name!r}; choose one of {known}"
        raise SpecError(field, problem)
    if name not in architectures_for(input_kind):
        fits = ", ".join(architectures_for(input_kind))
        raise SpecError(
            field, f"{name!r} does not apply to this dataset's {input_kind} inputs; choose one of {fits}"
        )
    try:
        entry.parse_options(options)
    except ValueError as exc:
        raise SpecError("training.model.options", str(exc)) from None


def check_baselines(spec: JobSpec, input_kind: str) -> None:
    """The stronger baselines (``baselines``): weighting methods of the registry, architectures of the
    registry that apply to the dataset's input kind (each trains with its default options)."""
    for name in spec.baselines.weighting:
        check_weighting(name, field="baselines.weighting")
    for name in spec.baselines.architectures:
        check_architecture(name, {}, input_kind, field="baselines.architectures")


CAPACITY_TOLERANCE = 0.2
"""How far (relative) a network's real FLOPs may be from its capacity before the capacity is refused: widths
are whole numbers, so the narrowest network of a family has a floor (planted: about 1% of full size)."""


def check_model(spec: JobSpec, dataset: Dataset) -> None:
    """Build the model families of the job (one task, and all its tasks) and solve every capacity's width
    multiplier: bad model options, or a capacity whose network cannot be built near that size (its cost in
    SNT would be a fiction), fail here, not in every training."""
    from workers.models import family_flops, make_family, multiplier_for_capacity

    try:
        shape = tuple(dataset.input_shape())
    except (OSError, ValueError, KeyError) as exc:  # a tabular file that cannot be read as described
        raise SpecError("dataset.params", str(exc)) from None
    model = spec.training.model
    check_architecture(model.architecture, dict(model.options), dataset.input_kind)
    capacities = sorted({*spec.capacities.subsets, *spec.capacities.singles})
    for tasks in ([spec.tasks[0]], spec.tasks):
        infos = [dataset.task(name) for name in tasks]
        options = dict(dataset.model_options())
        family = make_family(dataset.input_kind, shape, infos, options, model.architecture, model.options)
        full = family_flops(family, 1.0)
        for capacity in capacities:
            try:
                real = family_flops(family, multiplier_for_capacity(family, capacity)) / full
            except ValueError as exc:
                raise SpecError("capacities", str(exc).removeprefix("capacity: ")) from None
            if abs(real - capacity) > CAPACITY_TOLERANCE * capacity:
                raise SpecError(
                    "capacities",
                    f"capacity {capacity:g} cannot be built for {len(tasks)} task(s) of this dataset: the "
                    f"nearest network costs {real:.3g} of the full-size one (whole widths); use a capacity "
                    f"of at least {real:.2g}",
                )


def prepare(data: Mapping[str, Any] | JobSpec, capacity: ClusterCapacity | None = None) -> Submission:
    """Validate a spec completely (see the module doc) and plan it. Raises pydantic's ValidationError for the
    spec's own fields and :class:`SpecError` for the rest."""
    spec = data if isinstance(data, JobSpec) else JobSpec.model_validate(data)
    check_training(spec)
    dataset = build_dataset(spec)
    check_model(spec, dataset)
    check_baselines(spec, dataset.input_kind)
    try:
        plan = priced(make_plan(spec, dataset.fingerprint()), dataset)
    except ValueError as exc:
        raise SpecError("approximation", str(exc)) from None
    except OSError as exc:
        raise SpecError("dataset.params", f"cannot read the dataset: {exc}") from None
    if capacity is not None:
        check_resources(spec.resources, capacity)
    return Submission(spec, dataset, plan)


def submit_job(
    store: Store,
    data: Mapping[str, Any] | JobSpec | Submission,
    *,
    capacity: ClusterCapacity | None = None,
    job_id: str | None = None,
) -> JobRecord:
    """Validate and plan a spec (unless already a :class:`Submission`) and record it ``queued``."""
    submission = data if isinstance(data, Submission) else prepare(data, capacity)
    return store.create_job(submission.spec, submission.plan, job_id=job_id)


__all__ = [
    "ClusterCapacity",
    "SpecError",
    "Submission",
    "build_dataset",
    "check_architecture",
    "check_baselines",
    "check_model",
    "check_resources",
    "check_training",
    "check_weighting",
    "local_capacity",
    "prepare",
    "submit_job",
]
