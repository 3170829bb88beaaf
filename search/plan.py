"""The plan of a job: which trainings its approximation needs (DESIGN.md, data flow step 2).

* ``exhaustive``: every non-empty subset of the tasks at each subset capacity (the paper: 2^n - 1 networks
  at 1 SNT) plus every single task at each single capacity (the paper: n half-size networks).
* ``esa``: the same at a low fidelity (the paper's early-stopping approximation).
* ``hoa``: the singles at every capacity and the pairs at the subset capacities; larger groups are
  predicted from the pairs (the paper's higher-order approximation).

Each candidate is trained once per seed. A training is identified by its key (``search.keys``), so plans
of different jobs that need the same training share it. The plan is stored whole with its job: the run
trains exactly what was planned at submission (on the dataset of the same fingerprint).
"""

from __future__ import annotations

import itertools
import math

from pydantic import BaseModel, ConfigDict, Field

from search.keys import training_key
from search.spec import JobSpec
from workers.spec import DatasetRef, TrainingSettings, TrainingSpec, epochs_for


class PlanSummary(BaseModel):
    """What a plan costs, reported before anything runs (and in every result)."""

    model_config = ConfigDict(extra="forbid")

    approximation: str
    candidates: int = Field(description="distinct networks (task set x capacity), before seeds")
    network_trainings: int = Field(description="trainings to run: candidates x seeds")
    snt_epochs: float = Field(description="estimated compute: sum of capacity x epochs over trainings")


class PlannedTraining(BaseModel):
    """One training of a plan: its key and what varies between the trainings of one job."""

    model_config = ConfigDict(extra="forbid")

    key: str
    tasks: list[str] = Field(description="the network's tasks")
    capacity: float
    fidelity: float
    seed: int


class Plan(PlanSummary):
    """The trainings a job needs: what they share (dataset, settings) once, and each one's key."""

    dataset: DatasetRef
    fingerprint: str = Field(description="the dataset's fingerprint the keys were computed on")
    settings: TrainingSettings
    threads: int = Field(ge=1, description="torch threads of each training (its CPUs)")
    trainings: list[PlannedTraining]

    def summary(self) -> PlanSummary:
        return PlanSummary.model_validate(self.model_dump(include=set(PlanSummary.model_fields)))

    def training_spec(self, training: PlannedTraining) -> TrainingSpec:
        """The full spec of one planned training (what its Ray trial receives)."""
        varying = training.model_dump(include={"tasks", "capacity", "fidelity", "seed"})
        return TrainingSpec(dataset=self.dataset, settings=self.settings, threads=self.threads, **varying)

    def specs(self) -> dict[str, TrainingSpec]:
        """key -> spec of every planned training, in plan order."""
        return {t.key: self.training_spec(t) for t in self.trainings}

    def by_key(self) -> dict[str, PlannedTraining]:
        return {t.key: t for t in self.trainings}

    def planned(self, tasks: list[str], capacity: float, fidelity: float, seed: int) -> PlannedTraining:
        """A training of this plan's dataset and settings (one of its own, or one a later phase adds, e.g.
        finalize at full fidelity), with its key."""
        return _planned(
            self.dataset, self.settings, self.threads, self.fingerprint, tasks, capacity, fidelity, seed
        )


def _planned(
    dataset: DatasetRef,
    settings: TrainingSettings,
    threads: int,
    fingerprint: str,
    tasks: list[str],
    capacity: float,
    fidelity: float,
    seed: int,
) -> PlannedTraining:
    training = TrainingSpec(
        dataset=dataset,
        tasks=sorted(tasks),
        capacity=capacity,
        fidelity=fidelity,
        seed=seed,
        settings=settings,
        threads=threads,
    )
    varying = training.model_dump(include={"tasks", "capacity", "fidelity", "seed"})
    return PlannedTraining(key=training_key(training, fingerprint), **varying)


def candidate_sets(spec: JobSpec) -> list[tuple[tuple[str, ...], float]]:
    """(tasks, capacity) of every network the approximation trains, in a stable order."""
    tasks = spec.tasks
    sizes = [1, 2] if spec.approximation == "hoa" else list(range(1, len(tasks) + 1))
    out: list[tuple[tuple[str, ...], float]] = []
    for size in sizes:
        for combo in itertools.combinations(tasks, size):
            out.extend((combo, capacity) for capacity in spec.capacities.subsets)
    for task in tasks:
        out.extend(
            ((task,), capacity)
            for capacity in spec.capacities.singles
            if capacity not in spec.capacities.subsets
        )
    return out


def planned_size(spec: JobSpec) -> int:
    """Number of trainings without building them (cheap, for validation of huge specs)."""
    n = len(spec.tasks)
    subsets = n + n * (n - 1) // 2 if spec.approximation == "hoa" else 2**n - 1
    extra_singles = len([c for c in spec.capacities.singles if c not in spec.capacities.subsets])
    return (subsets * len(spec.capacities.subsets) + n * extra_singles) * spec.seeds


def check_plan_size(spec: JobSpec) -> int:
    """The plan's number of trainings; ValueError naming a cheaper approximation above the limit."""
    size = planned_size(spec)
    if size > spec.max_trainings and not spec.allow_large:
        raise ValueError(
            f"the {spec.approximation} plan for {len(spec.tasks)} tasks needs {size} trainings, above the "
            f"limit of {spec.max_trainings}: use approximation 'hoa', fewer tasks or seeds, or set "
            f"allow_large: true (or raise max_trainings)"
        )
    return size


def make_plan(spec: JobSpec, fingerprint: str) -> Plan:
    """The plan of ``spec`` on a dataset whose fingerprint is ``fingerprint``.

    Raises ValueError when the plan is above ``spec.max_trainings`` and ``allow_large`` is not set.
    """
    check_plan_size(spec)
    fidelity = spec.effective_fidelity
    threads = max(1, math.floor(spec.resources.cpus))
    trainings: list[PlannedTraining] = []
    snt_epochs = 0.0
    candidates = candidate_sets(spec)
    for tasks, capacity in candidates:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            args = (spec.dataset, spec.training, threads, fingerprint, list(tasks), capacity, fidelity, seed)
            trainings.append(_planned(*args))
            snt_epochs += capacity * epochs_for(fidelity, spec.training.epochs)
    return Plan(
        approximation=spec.approximation,
        candidates=len(candidates),
        network_trainings=len(trainings),
        snt_epochs=snt_epochs,
        dataset=spec.dataset,
        fingerprint=fingerprint,
        settings=spec.training,
        threads=threads,
        trainings=trainings,
    )
