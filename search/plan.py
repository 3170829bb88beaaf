"""The plan of a job: which trainings its approximation needs (DESIGN.md, data flow step 2).

The approximation is a strategy (:mod:`grouping.strategies`) that asks for trainings in rounds:

* ``exhaustive``: every non-empty subset of the tasks at each subset capacity (the paper: 2^n - 1 networks
  at 1 SNT) plus every single task at each single capacity (the paper: n half-size networks); one round.
* ``esa``: the same at a low fidelity (the paper's early-stopping approximation); one round.
* ``hoa``: the singles at every capacity and the pairs at the subset capacities; larger groups are
  predicted from the pairs (the paper's higher-order approximation); one round.
* ``tag``: the singles and one all-task training that measures TAG's lookahead affinities; one round.
* ``adaptive``: a start round, then rounds decided from what was measured, within a compute cap.

The plan holds the trainings asked for so far: at submission the first round (for the one-round
approximations, everything), then each later round's as the run decides it. A training is identified by its
key (``search.keys``), so plans of different jobs that need the same training share it. The plan is stored
whole with its job: the run trains exactly what was planned (on the dataset of the same fingerprint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grouping.strategies import TrainingRequest
from search.keys import training_key
from search.spec import JobSpec
from workers.spec import (
    DatasetRef,
    LookaheadSettings,
    ModelSettings,
    TrainingSettings,
    TrainingSpec,
    epochs_for,
)


class PlanSummary(BaseModel):
    """What a plan costs, reported before anything runs (and in every result). For ``adaptive``, what is
    planned so far (at submission: its start round; later rounds add to it up to its compute cap)."""

    model_config = ConfigDict(extra="forbid")

    approximation: str
    candidates: int = Field(description="distinct networks (task set x capacity), before seeds")
    network_trainings: int = Field(description="trainings to run: candidates x seeds")
    snt_epochs: float = Field(description="estimated compute: sum of capacity x epochs over trainings")
    rounds: int = Field(1, ge=1, description="rounds planned so far (adaptive: more follow as it decides)")


class PlannedTraining(BaseModel):
    """One training of a plan: its key and what varies between the trainings of one job."""

    model_config = ConfigDict(extra="forbid")

    key: str
    tasks: list[str] = Field(description="the network's tasks")
    capacity: float
    fidelity: float
    seed: int
    lookahead: bool = Field(False, description="also measures TAG's lookahead affinities")
    round: int = Field(1, ge=1, description="the round that asked for it")
    reason: str = Field("", description="why the approximation asked for it")

    def request(self, order: Sequence[str]) -> TrainingRequest:
        """The strategy's request this training answers (its tasks in the job's ``order``)."""
        index = {t: i for i, t in enumerate(order)}
        return TrainingRequest(
            tasks=tuple(sorted(self.tasks, key=index.__getitem__)),
            capacity=self.capacity,
            fidelity=self.fidelity,
            seed=self.seed,
            lookahead=self.lookahead,
            reason=self.reason,
            round=self.round,
        )


class PlannedBaseline(PlannedTraining):
    """One training of a stronger baseline (``JobSpec.baselines``): the all-task network at capacity 1 and
    full fidelity, trained with its own ``settings`` (the job's, with another weighting method or
    architecture). Not one of the search's trainings: its strategy never measures it."""

    name: str = Field(description="the baseline's name in the result, e.g. 'all-task network (gradnorm)'")
    kind: Literal["weighting", "architecture"] = Field(description="what it changes in the job's settings")
    choice: str = Field(description="the weighting method or architecture it trains with")
    settings: TrainingSettings = Field(description="its training settings (part of its key)")
    cost: float | None = Field(
        None, description="inference cost in SNT (FLOPs against hard sharing); set once the dataset is built"
    )


BASELINE_FIDELITY = 1.0
BASELINE_CAPACITY = 1.0


def baseline_name(kind: str, choice: str, settings: TrainingSettings) -> str:
    """The result's name of a baseline: the architecture when it is not hard sharing, the weighting when
    the entry names one or it is not ``equal`` ('all-task network (gradnorm)', 'all-task cross-stitch
    network'); never the plain 'all-task network', the fixed baseline of the search's own table."""
    architecture = settings.model.architecture
    network = "network" if architecture == "hard" and kind == "weighting" else f"{architecture} network"
    weighting = f" ({settings.weighting})" if kind == "weighting" or settings.weighting != "equal" else ""
    return f"all-task {network}{weighting}"


def baseline_settings(job: TrainingSettings, kind: str, choice: str) -> TrainingSettings:
    """The job's settings with the entry's weighting method or architecture (its default options, unless
    it is the job's own choice, whose options stay)."""
    if kind == "weighting":
        if choice == job.weighting:
            return job
        return job.model_copy(update={"weighting": choice, "weighting_options": {}})
    if choice == job.model.architecture:
        return job
    return job.model_copy(update={"model": ModelSettings(architecture=choice)})


class Plan(PlanSummary):
    """The trainings a job needs: what they share (dataset, settings) once, and each one's key."""

    dataset: DatasetRef
    fingerprint: str = Field(description="the dataset's fingerprint the keys were computed on")
    settings: TrainingSettings
    threads: int = Field(ge=1, description="torch threads of each training (its CPUs)")
    lookahead_every: int = Field(10, ge=1, description="steps between lookahead affinity measurements")
    trainings: list[PlannedTraining]
    baselines: list[PlannedBaseline] = Field(
        default_factory=list,
        description="the stronger baselines' trainings (JobSpec.baselines): run after the search, never "
        "measured by its strategy",
    )

    def summary(self) -> PlanSummary:
        return PlanSummary.model_validate(self.model_dump(include=set(PlanSummary.model_fields)))

    def training_spec(self, training: PlannedTraining) -> TrainingSpec:
        """The full spec of one planned training (what its Ray trial receives); a baseline's with its own
        settings."""
        return _training_spec(
            self.dataset,
            training.settings if isinstance(training, PlannedBaseline) else self.settings,
            self.threads,
            training.tasks,
            training.capacity,
            training.fidelity,
            training.seed,
            LookaheadSettings(every=self.lookahead_every) if training.lookahead else None,
        )

    def specs(self) -> dict[str, TrainingSpec]:
        """key -> spec of every planned training, in plan order."""
        return {t.key: self.training_spec(t) for t in self.trainings}

    def by_key(self) -> dict[str, PlannedTraining]:
        """The search's trainings by key (not the baselines': the strategy never sees those)."""
        return {t.key: t for t in self.trainings}

    def baseline(self, kind: str, choice: str, tasks: Sequence[str], seed: int) -> PlannedBaseline:
        """The training of one baseline entry at one seed (all ``tasks``, capacity 1, full fidelity)."""
        settings = baseline_settings(self.settings, kind, choice)
        spec = _training_spec(
            self.dataset,
            settings,
            self.threads,
            list(tasks),
            BASELINE_CAPACITY,
            BASELINE_FIDELITY,
            seed,
            None,
        )
        return PlannedBaseline(
            key=training_key(spec, self.fingerprint),
            tasks=list(tasks),
            capacity=BASELINE_CAPACITY,
            fidelity=BASELINE_FIDELITY,
            seed=seed,
            reason="baseline",
            name=baseline_name(kind, choice, settings),
            kind=kind,  # type: ignore[arg-type]
            choice=choice,
            settings=settings,
        )

    def with_baselines(self, spec: JobSpec) -> Plan:
        """This plan with the trainings of ``spec.baselines`` (each entry at each of the job's seeds; an
        entry that trains what an earlier one does is left out, the earlier one's name kept)."""
        entries = [("weighting", w) for w in spec.baselines.weighting]
        entries += [("architecture", a) for a in spec.baselines.architectures]
        seeds = range(spec.seed, spec.seed + spec.seed_count)
        baselines: dict[str, PlannedBaseline] = {}
        for kind, choice in entries:
            group = [self.baseline(kind, choice, spec.tasks, seed) for seed in seeds]
            if group[0].key in baselines:
                continue
            baselines.update((t.key, t) for t in group)
        planned = list(baselines.values())
        totals = _totals([*self.trainings, *planned], self.settings.epochs)
        return self.model_copy(update={"baselines": planned, **totals})

    def planned(
        self,
        tasks: Sequence[str],
        capacity: float,
        fidelity: float,
        seed: int,
        *,
        lookahead: bool = False,
        round: int = 1,
        reason: str = "",
    ) -> PlannedTraining:
        """A training of this plan's dataset and settings (one of its own, or one a later phase adds, e.g.
        finalize at full fidelity), with its key."""
        spec = _training_spec(
            self.dataset,
            self.settings,
            self.threads,
            list(tasks),
            capacity,
            fidelity,
            seed,
            LookaheadSettings(every=self.lookahead_every) if lookahead else None,
        )
        varying = spec.model_dump(include={"tasks", "capacity", "fidelity", "seed"})
        key = training_key(spec, self.fingerprint)
        return PlannedTraining(key=key, lookahead=lookahead, round=round, reason=reason, **varying)

    def from_request(self, request: TrainingRequest) -> PlannedTraining:
        """The planned training of a strategy's request."""
        return self.planned(
            request.tasks,
            request.capacity,
            request.fidelity,
            request.seed,
            lookahead=request.lookahead,
            round=request.round,
            reason=request.reason,
        )

    def extended(self, requests: Sequence[TrainingRequest]) -> Plan:
        """This plan with a round's requests added (those it already has are not added twice)."""
        known = {t.key for t in self.trainings}
        new = [t for t in (self.from_request(r) for r in requests) if t.key not in known]
        trainings = [*self.trainings, *new]
        rounds = max([self.rounds, *(t.round for t in new)])
        totals = _totals([*trainings, *self.baselines], self.settings.epochs)
        return self.model_copy(update={"trainings": trainings, "rounds": rounds, **totals})


def _training_spec(
    dataset: DatasetRef,
    settings: TrainingSettings,
    threads: int,
    tasks: list[str],
    capacity: float,
    fidelity: float,
    seed: int,
    lookahead: LookaheadSettings | None,
) -> TrainingSpec:
    return TrainingSpec(
        dataset=dataset,
        tasks=sorted(tasks),
        capacity=capacity,
        fidelity=fidelity,
        seed=seed,
        settings=settings,
        threads=threads,
        lookahead=lookahead,
    )


def _totals(trainings: Sequence[PlannedTraining], epochs: int) -> dict[str, float | int]:
    """The summary of these trainings: distinct networks, trainings, and capacity x epochs summed."""
    return {
        "candidates": len({(tuple(t.tasks), t.capacity) for t in trainings}),
        "network_trainings": len(trainings),
        "snt_epochs": math.fsum(t.capacity * epochs_for(t.fidelity, epochs) for t in trainings),
    }


def planned_size(spec: JobSpec) -> int:
    """Number of trainings of the first round and the baselines without building them for the fixed plans
    (cheap, for the validation of huge specs); the others ask their strategy (a handful of tasks)."""
    baselines = (len(spec.baselines.weighting) + len(spec.baselines.architectures)) * spec.seed_count
    return baselines + spec.strategy().size()  # the fixed plans count theirs: 2^40 - 1 is never listed


def check_plan_size(spec: JobSpec) -> int:
    """The plan's number of trainings; ValueError naming a cheaper approximation above the limit."""
    size = planned_size(spec)
    if size > spec.max_trainings and not spec.allow_large:
        raise ValueError(
            f"the {spec.approximation} plan for {len(spec.tasks)} tasks needs {size} trainings, above the "
            f"limit of {spec.max_trainings}: use approximation 'hoa', fewer tasks or seeds, or set "
            f"allow_large (and max_trainings) to run it anyway"
        )
    return size


def make_plan(spec: JobSpec, fingerprint: str) -> Plan:
    """The plan of ``spec`` on a dataset whose fingerprint is ``fingerprint``: its strategy's first round.

    Raises ValueError when the plan is above ``spec.max_trainings`` and ``allow_large`` is not set.
    """
    check_plan_size(spec)
    empty = Plan(
        approximation=spec.approximation,
        candidates=0,
        network_trainings=0,
        snt_epochs=0.0,
        dataset=spec.dataset,
        fingerprint=fingerprint,
        settings=spec.training,
        threads=max(1, math.floor(spec.resources.cpus)),
        lookahead_every=spec.lookahead_every,
        trainings=[],
    )
    first = spec.strategy().next_round([])
    plan = empty if first is None else empty.extended(first.requests)
    return plan.with_baselines(spec) if spec.baselines else plan
