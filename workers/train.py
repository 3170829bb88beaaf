"""Train one candidate network: ``train_candidate(spec) -> TrainingResult``.

This is one *training* of Standley et al. (ICML 2020): a network with hard parameter sharing (or the
architecture ``settings.model`` names, see ``docs/architectures.md``) over a subset of tasks at a
capacity, trained on the plain sum of its task losses (or another loss weighting
of the registry) on the training split, early-stopped on the validation loss, and evaluated per task on
validation (``selection`` losses: what the grouping is chosen on) and test (``scoring`` losses: what
the chosen grouping is reported with). Fidelity is the fraction of the full schedule:
``TrainingSpec.max_epochs`` (``workers.spec.epochs_for``) epochs at most (the paper's early-stopping
approximation, ESA, trains candidates for a fraction of the schedule).

Departures from the paper: the paper trains each network once with a fixed schedule and picks the
best validation checkpoint; we do the same but also stop when the validation loss has not improved for
``patience`` epochs (to save compute in a service), and the checkpoint is kept in memory
(:func:`train_network` returns it; a Ray trial writes it to Tune's storage when the spec keeps weights).

The function is called inside Ray trials; a reused worker process keeps recently loaded datasets in an
LRU cache keyed by the dataset fingerprint, so many trainings on one dataset load it once.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workers.checkpoint import NetworkCard
from workers.datasets import Dataset, Split, SplitName, TaskInfo, get_dataset
from workers.device import choose_device, configure_threads
from workers.lookahead import LookaheadAffinity
from workers.losses import TaskEvaluator, TaskScores, task_loss
from workers.models import MultiTaskNetwork, family_flops, make_family, multiplier_for_capacity
from workers.spec import (
    DatasetRef,
    EpochRecord,
    TrainingResult,
    TrainingSettings,
    TrainingSpec,
)
from workers.weighting import BackwardContext, LossWeighting, make_weighting

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "CandidateTraining",
    "DatasetCache",
    "TrainedNetwork",
    "dataset_cache",
    "evaluate",
    "load_dataset",
    "train_candidate",
    "train_network",
]

EVAL_BATCH = 512  # samples per evaluation batch (no gradients, so larger than a training batch)


# ------------------------------------------------------------------------------------------ data cache
class DatasetCache:
    """A thread-safe LRU of loaded datasets keyed by fingerprint (one per Ray worker process).

    Size: ``TASKGROUP_DATASET_CACHE`` (default 2: a default-size taskonomy-mini takes ~100 MB).
    """

    def __init__(self, maxsize: int | None = None) -> None:
        self.maxsize = maxsize if maxsize is not None else int(os.environ.get("TASKGROUP_DATASET_CACHE", "2"))
        self._items: OrderedDict[str, tuple[Dataset, dict[SplitName, Split]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, ref: DatasetRef) -> tuple[Dataset, dict[SplitName, Split]]:
        dataset = get_dataset(ref.name, ref.params)
        key = f"{ref.name}:{dataset.fingerprint()}"
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        splits = dataset.load()  # outside the lock: loading may take a while
        with self._lock:
            self.misses += 1
            self._items[key] = (dataset, splits)
            self._items.move_to_end(key)
            while len(self._items) > max(self.maxsize, 1):
                self._items.popitem(last=False)
        return dataset, splits

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


dataset_cache = DatasetCache()


def load_dataset(ref: DatasetRef | Mapping[str, Any]) -> tuple[Dataset, dict[SplitName, Split]]:
    """The dataset and its three splits, from the per-process cache."""
    return dataset_cache.get(ref if isinstance(ref, DatasetRef) else DatasetRef.model_validate(ref))


# ------------------------------------------------------------------------------------------ optimisers
ParamGroups = list[dict[str, Any]]

OPTIMIZERS: dict[str, Callable[[ParamGroups, TrainingSettings], torch.optim.Optimizer]] = {
    "adam": lambda groups, s: torch.optim.Adam(groups, lr=s.learning_rate),
    "adamw": lambda groups, s: torch.optim.AdamW(groups, lr=s.learning_rate),
    "sgd": lambda groups, s: torch.optim.SGD(groups, lr=s.learning_rate, momentum=0.9),
}
"""Optimiser name -> factory. Weight decay is set per parameter group (see ``_param_groups``)."""


def _param_groups(model: nn.Module, weighting: LossWeighting, settings: TrainingSettings) -> ParamGroups:
    """The model's parameters with the configured weight decay; the weighting method's own learnable
    parameters (uncertainty's log-variances, GradNorm's task weights) in a group WITHOUT weight decay:
    decaying them would pull every log-variance to 0 / every weight to 0 instead of learning them."""
    groups: ParamGroups = [{"params": list(model.parameters()), "weight_decay": settings.weight_decay}]
    own = [p for p in weighting.parameters() if p.requires_grad]
    if own:
        groups.append({"params": own, "weight_decay": 0.0})
    return groups


# ------------------------------------------------------------------------------------------ helpers
def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterable[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


def _split_to(split: Split, tasks: list[str], device: torch.device) -> Split:
    return Split(split.inputs.to(device), {t: split.targets[t].to(device) for t in tasks})


@torch.no_grad()
def evaluate(
    model: MultiTaskNetwork, split: Split, infos: list[TaskInfo], batch_size: int = EVAL_BATCH
) -> dict[str, TaskScores]:
    """Per-task loss (exact mean over labelled entries), metric and KPI of ``model`` on ``split``."""
    was_training = model.training
    model.eval()
    evaluators = {info.name: TaskEvaluator(info) for info in infos}
    for index in _batches(len(split), batch_size, None):
        _, outputs = model(split.inputs[index])
        for name, evaluator in evaluators.items():
            evaluator.update(outputs[name], split.targets[name][index])
    model.train(was_training)
    return {name: evaluator.result() for name, evaluator in evaluators.items()}


def _check_finite(scores: Mapping[str, float], epoch: int, where: str) -> None:
    for task, value in scores.items():
        if not math.isfinite(value):
            raise RuntimeError(
                f"training diverged: task {task!r} has a non-finite {where} loss ({value}) at epoch {epoch}; "
                "lower settings.learning_rate or check the task's targets"
            )


# ------------------------------------------------------------------------------------------ training
class CandidateTraining:
    """One training of one candidate, step by step (what :func:`train_candidate` runs).

    Built in the order that fixes the randomness (seed, model, weighting, optimiser, batch order), so a
    training is deterministic for its seed on CPU.
    """

    def __init__(self, spec: TrainingSpec) -> None:
        self.started = time.perf_counter()
        self.spec = spec
        self.settings = spec.settings
        self.device = choose_device(spec.device)
        self.threads = configure_threads(spec.threads)
        dataset, self.splits = load_dataset(spec.dataset)
        self.dataset = dataset
        self.infos = [dataset.task(name) for name in spec.tasks]
        self.names = [info.name for info in self.infos]
        self.family = make_family(
            dataset.input_kind,
            tuple(dataset.input_shape()),
            self.infos,
            dict(dataset.model_options()),
            self.settings.model.architecture,
            self.settings.model.options,
        )
        self.multiplier = multiplier_for_capacity(self.family, spec.capacity)
        torch.manual_seed(spec.seed)
        self.model = self.family.build(self.multiplier).to(self.device)
        options = self.settings.weighting_options
        self.weighting = make_weighting(self.settings.weighting, self.names, **options).to(self.device)
        groups = _param_groups(self.model, self.weighting, self.settings)
        self.optimizer = OPTIMIZERS[self.settings.optimizer](groups, self.settings)
        self.generator = torch.Generator().manual_seed(spec.seed)
        self.lookahead = (
            None
            if spec.lookahead is None
            else LookaheadAffinity(self.model, self.optimizer, self.infos, spec.lookahead)
        )
        self.train_split = _split_to(self.splits["train"], self.names, self.device)
        self.validation = _split_to(self.splits["validation"], self.names, self.device)
        self.step = 0
        self.best_state: dict[str, torch.Tensor] | None = None  # the best epoch's weights, after run()

    def train_step(
        self, index: torch.Tensor, epoch: int, evaluators: dict[str, TaskEvaluator]
    ) -> dict[str, float]:
        """One optimiser step on the batch ``index``; returns the weights the weighting method applied. When
        the spec asks for it, TAG's lookahead affinity is measured first (the training is left unchanged)."""
        if self.lookahead is not None and self.lookahead.due(self.step):
            targets = {n: self.train_split.targets[n][index] for n in self.names}
            self.lookahead.measure(self.train_split.inputs[index], targets)
        representation, outputs = self.model(self.train_split.inputs[index])
        losses = {}
        for info in self.infos:
            target = self.train_split.targets[info.name][index]
            loss = task_loss(info, outputs[info.name], target)
            if not torch.isfinite(loss):
                _check_finite({info.name: float(loss.detach())}, epoch + 1, "training")
            losses[info.name] = loss
            evaluators[info.name].update(outputs[info.name], target)
        self.optimizer.zero_grad(set_to_none=True)
        context = BackwardContext(representation, self.model.shared_parameters(), epoch=epoch, step=self.step)
        weights = self.weighting.backward(losses, context)
        self.optimizer.step()
        self.weighting.after_step()
        self.step += 1
        return weights

    def train_epoch(self, epoch: int) -> EpochRecord:
        """One pass over the training split, then the validation losses; the epoch's record."""
        epoch_started = time.perf_counter()
        self.model.train()
        evaluators = {info.name: TaskEvaluator(info, with_metric=False) for info in self.infos}
        weight_sums = dict.fromkeys(self.names, 0.0)
        batches = 0
        for index in _batches(len(self.train_split), self.settings.batch_size, self.generator):
            weights = self.train_step(index, epoch, evaluators)
            for name in self.names:
                weight_sums[name] += float(weights.get(name, 1.0))
            batches += 1
        train_scores = {name: ev.result() for name, ev in evaluators.items()}
        val_scores = evaluate(self.model, self.validation, self.infos)
        val_losses = {name: s.loss for name, s in val_scores.items()}
        unlabelled = [name for name, s in val_scores.items() if s.labelled == 0]
        if unlabelled:
            raise ValueError(
                f"tasks: {unlabelled} have no label in the validation split; they cannot be selected"
            )
        _check_finite(val_losses, epoch + 1, "validation")
        self.weighting.epoch_end(
            epoch, {n: s.loss for n, s in train_scores.items()}, {n: s.kpi for n, s in train_scores.items()}
        )
        return EpochRecord(
            epoch=epoch + 1,
            train_loss=sum(s.loss for s in train_scores.values()),
            validation_loss=sum(val_losses.values()),
            validation_losses=val_losses,
            weights={n: w / max(batches, 1) for n, w in weight_sums.items()},
            seconds=time.perf_counter() - epoch_started,
        )

    def run(self, on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainingResult:
        """Train up to ``spec.max_epochs`` epochs, early-stopped on the validation loss; restore the best
        epoch's weights and evaluate them on validation and test."""
        logger.info(
            "training %s on %s: %s, capacity %.3g (width x%.3f), %d epochs max, %s, %d threads",
            self.names,
            self.spec.dataset.name,
            self.settings.model.architecture,
            self.spec.capacity,
            self.multiplier,
            self.spec.max_epochs,
            self.device,
            self.threads,
        )
        curve: list[EpochRecord] = []
        best_loss, best_epoch, best_state = math.inf, 0, None
        for epoch in range(self.spec.max_epochs):
            record = self.train_epoch(epoch)
            curve.append(record)
            logger.debug(
                "epoch %d: train %.5f, validation %.5f", epoch + 1, record.train_loss, record.validation_loss
            )
            if on_epoch is not None:
                on_epoch(record)
            if record.validation_loss < best_loss:
                best_loss, best_epoch = record.validation_loss, epoch + 1
                best_state = copy.deepcopy(self.model.state_dict())
            elif epoch + 1 - best_epoch >= self.settings.patience:
                logger.info("early stop after epoch %d (best %d)", epoch + 1, best_epoch)
                break
        assert best_state is not None
        self.model.load_state_dict(best_state)
        self.best_state = best_state
        return self.result(curve, best_epoch)

    def card(self, result: TrainingResult) -> NetworkCard:
        """What the trained weights are (:class:`~workers.checkpoint.NetworkCard`): rebuild and serve them."""
        return NetworkCard(
            result=result,
            fingerprint=self.dataset.fingerprint(),
            input_kind=self.dataset.input_kind,
            input_shape=list(self.family.input_shape),
            tasks=list(self.infos),
            model_options=self.family.options.model_dump(mode="json"),
            multiplier=self.multiplier,
            preprocessing=self.dataset.preprocessing(),
        )

    def result(self, curve: list[EpochRecord], best_epoch: int) -> TrainingResult:
        """The model's (restored best) losses and metrics on validation and test."""
        # Re-evaluated from the restored weights (equal to the best epoch's record: checks the restore).
        best_scores = evaluate(self.model, self.validation, self.infos)
        test_scores = evaluate(
            self.model, _split_to(self.splits["test"], self.names, self.device), self.infos
        )
        _check_finite({n: s.loss for n, s in test_scores.items()}, best_epoch, "test")
        return TrainingResult(
            spec=self.spec,
            selection={n: s.loss for n, s in best_scores.items()},
            scoring={n: s.loss for n, s in test_scores.items()},
            metrics={
                "selection": {n: s.metric for n, s in best_scores.items()},
                "scoring": {n: s.metric for n, s in test_scores.items()},
            },
            curve=curve,
            best_epoch=best_epoch,
            epochs_run=len(curve),
            wall_seconds=time.perf_counter() - self.started,
            flops_per_sample=float(family_flops(self.family, self.multiplier)),
            parameters=self.model.parameter_count(),
            device=str(self.device),
            lookahead=None if self.lookahead is None else self.lookahead.result(),
        )


@dataclass(frozen=True)
class TrainedNetwork:
    """A training's result with its best weights (CPU tensors) and their card: what a checkpoint keeps."""

    result: TrainingResult
    state_dict: dict[str, torch.Tensor]
    card: NetworkCard


def train_network(
    spec: TrainingSpec | Mapping[str, Any], on_epoch: Callable[[EpochRecord], None] | None = None
) -> TrainedNetwork:
    """Like :func:`train_candidate`, and also return the best epoch's weights (the state dict whose losses the
    result records) with the :class:`~workers.checkpoint.NetworkCard` that says how to rebuild and serve them.
    The Ray trainable keeps them as a checkpoint when ``spec.keep_weights`` is set."""
    spec = spec if isinstance(spec, TrainingSpec) else TrainingSpec.model_validate(dict(spec))
    training = CandidateTraining(spec)
    result = training.run(on_epoch)
    assert training.best_state is not None
    state = {name: tensor.detach().cpu() for name, tensor in training.best_state.items()}
    return TrainedNetwork(result=result, state_dict=state, card=training.card(result))


def train_candidate(
    spec: TrainingSpec | Mapping[str, Any], on_epoch: Callable[[EpochRecord], None] | None = None
) -> TrainingResult:
    """Train one candidate and return its per-task validation and test losses.

    ``spec``: a :class:`TrainingSpec` or a dict of one (a bad field raises a ValueError naming it:
    pydantic's ValidationError is a ValueError). Unknown dataset or task: ValueError. ``on_epoch`` is
    called with each :class:`EpochRecord` (epochs count from 1) right after the epoch, e.g. to report
    progress to Ray Tune. A non-finite loss raises RuntimeError naming the task and epoch.

    Deterministic for a seed on CPU: the seed fixes the initial weights and the batch order.
    """
    spec = spec if isinstance(spec, TrainingSpec) else TrainingSpec.model_validate(dict(spec))
    return CandidateTraining(spec).run(on_epoch)
