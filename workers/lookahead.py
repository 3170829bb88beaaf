"""Lookahead inter-task affinity measured during one training (TAG: Fifty, Amid, Zhao, Yu, Anil & Finn,
NeurIPS 2021, "Efficiently Identifying Task Groupings for Multi-Task Learning").

Every ``k`` training steps (:class:`workers.spec.LookaheadSettings`), on the step's batch and before the
trainer's own update, :meth:`LookaheadAffinity.measure`:

1. runs the model on the batch (in the model's current mode: train mode in the trainer, so BatchNorm uses
   the batch statistics exactly as the training step does) and takes every task's loss ``L_j(before)`` and
   every task's gradient with respect to the *shared* parameters (every parameter of the model that is not
   in a task's head: the encoder of :class:`workers.models.MultiTaskModel`);
2. for each task i: leaves task i's gradient on the shared parameters and no gradient anywhere else, calls
   the trainer's real ``optimizer.step()`` (Adam, AdamW or SGD with momentum, with their state: moments,
   momentum buffers, step counts, weight decay), runs the model again and takes every ``L_j(after i)``;
   then restores the training exactly;
3. records ``Z_{i->j} = 1 - L_j(after i) / L_j(before)`` (Fifty et al., eq. 2): positive when a step on i
   lowers j's loss.

:meth:`LookaheadAffinity.result` gives the true mean of ``Z`` over the lookahead steps of the training (a sum
and a count per pair), with the number of steps and the seconds spent.

**What is restored, and how** (:class:`TrainingSnapshot`): the shared parameters (copied back), the optimiser
state of every shared parameter (cloned tensors; a parameter that had no state yet, e.g. at step 0, gets none
back), every non-parameter entry of every parameter group (a step counter an optimiser keeps there), every
buffer of the model (BatchNorm running mean, variance and ``num_batches_tracked``), the ``.grad`` of every
parameter, and the global torch RNG (and CUDA's on a GPU): it is set back before every forward pass, so
the lookahead's passes draw the same random numbers (e.g. dropout masks) as the training step, and the
training continues as if the lookahead never ran. Torch's optimisers skip a parameter whose ``.grad`` is
None, which is what confines a lookahead step to the shared parameters (heads and the loss weighting's own
parameters are not touched). On CPU a training with lookahead is bit-identical to the same training
without it (the tests check weights, losses and optimiser state with ``torch.equal``).

**Loss weighting.** The lookahead step uses task i's loss alone, unweighted, as TAG does; the weighting
method (``settings.weighting``) is not called, so its state (GradNorm's weights and initial losses, DWA's
history, ...) is not changed by the lookahead; its learnable parameters get no gradient, so no step.

**Departures from the reference code** (the TAG authors' TensorFlow code and the code derived from it):

* it applies a hand-written update (``param - lr * grad``, at most a momentum term) to a functional copy of
  the shared network; we take the trainer's real optimiser step, so Adam's moments and bias correction,
  SGD's momentum and weight decay act on the lookahead step as on a training step, and we restore them;
* it divides the gain by the learning rate; we report eq. 2 as written (no division);
* its average over training has a constant scale error (issue 11); ours is a true mean over the lookahead
  steps (sum over steps / number of steps, per pair);
* its mixed-precision (fp16) path crashes; the lookahead here always runs in full precision (autocast
  disabled inside :meth:`LookaheadAffinity.measure`, whatever the caller's context);
* a pair (i, j) is skipped at a step where the batch has no label for i (task i's step would be a pure
  momentum step) or for j, or where ``L_j(before)`` is 0 or a value is non-finite; ``samples`` counts what
  was averaged.

With a momentum optimiser the lookahead step on task i is the momentum of past all-task gradients plus task
i's own contribution, so every ``Z_{i->j}`` of one j shares a common part (an offset across i): compare
sources i for one target j, as TAG's grouping does, rather than absolute values across optimisers.

Cost per lookahead step: one forward and n backward passes through the shared part (one per task), n
optimiser steps on the shared parameters and n forward passes without gradients, plus the copies of the
snapshot (bench/tag.py measures it against a plain training).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from workers.datasets import TaskInfo
from workers.losses import kind_spec
from workers.models import MultiTaskModel
from workers.spec import LookaheadResult, LookaheadSettings

logger = logging.getLogger(__name__)

__all__ = ["AffinityMean", "LookaheadAffinity", "TrainingSnapshot", "lookahead_parameters"]


def lookahead_parameters(model: MultiTaskModel) -> list[nn.Parameter]:
    """The parameters a lookahead step moves: every parameter of ``model`` that is not in a task's head."""
    heads = {id(p) for p in model.heads.parameters()}
    return [p for p in model.parameters() if id(p) not in heads and p.requires_grad]


# ------------------------------------------------------------------------------------------ snapshot
def _clone(value: object) -> object:
    return value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)


@dataclass
class TrainingSnapshot:
    """What one optimiser step on ``params`` and extra forward passes can change, saved to be put back.

    :meth:`capture` copies the values of ``params``, their optimiser state, the parameter groups' other
    entries, the model's buffers, every parameter's ``.grad`` (by reference: a lookahead never writes into a
    gradient tensor, it replaces ``.grad``) and the RNG state. :meth:`restore` puts all of it back and can be
    called any number of times.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    values: list[torch.Tensor] = field(default_factory=list)
    states: list[dict[str, object] | None] = field(default_factory=list)
    groups: list[dict[str, object]] = field(default_factory=list)
    buffers: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    grads: list[tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=list)
    rng: torch.Tensor | None = None
    cuda_rng: list[torch.Tensor] | None = None

    @classmethod
    def capture(
        cls, model: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]
    ) -> TrainingSnapshot:
        snap = cls(model, optimizer, params)
        snap.values = [p.detach().clone() for p in params]
        # `p in optimizer.state`, not `optimizer.state[p]`: the state is a defaultdict and would gain entries
        snap.states = [
            {k: _clone(v) for k, v in optimizer.state[p].items()} if p in optimizer.state else None
            for p in params
        ]
        snap.groups = [{k: _clone(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        snap.buffers = [(b, b.detach().clone()) for b in model.buffers()]
        everything = {id(p): p for p in model.parameters()}
        everything.update({id(p): p for g in optimizer.param_groups for p in g["params"]})
        snap.grads = [(p, p.grad) for p in everything.values()]
        snap.rng = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            snap.cuda_rng = torch.cuda.get_rng_state_all()
        return snap

    @torch.no_grad()
    def restore_values(self) -> None:
        """Parameters, optimiser state, parameter groups, buffers and RNG; not the gradients."""
        for p, value in zip(self.params, self.values, strict=True):
            p.copy_(value)
        for p, state in zip(self.params, self.states, strict=True):
            if state is None:
                self.optimizer.state.pop(p, None)
            else:
                self.optimizer.state[p] = {k: _clone(v) for k, v in state.items()}
        for group, saved in zip(self.optimizer.param_groups, self.groups, strict=True):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            group.update({k: _clone(v) for k, v in saved.items()})
        for live, saved_buffer in self.buffers:
            live.copy_(saved_buffer)
        self.restore_rng()

    def restore_rng(self) -> None:
        assert self.rng is not None
        torch.set_rng_state(self.rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)

    def restore(self) -> None:
        """Everything, gradients included: the training continues as if nothing had happened."""
        self.restore_values()
        for p, grad in self.grads:
            p.grad = grad


# ------------------------------------------------------------------------------------------ the mean
class AffinityMean:
    """Per-pair sums and counts of ``Z_{i->j}``; the mean is sum / count: a true mean over lookahead steps."""

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = list(tasks)
        self.sums = {i: dict.fromkeys(self.tasks, 0.0) for i in self.tasks}
        self.counts = {i: dict.fromkeys(self.tasks, 0) for i in self.tasks}
        self.steps = 0

    def add(self, step: Mapping[str, Mapping[str, float]]) -> None:
        """One lookahead step's ``{i: {j: Z_ij}}`` (pairs left out were not measured at this step)."""
        for i, row in step.items():
            for j, value in row.items():
                self.sums[i][j] += float(value)
                self.counts[i][j] += 1
        self.steps += 1

    def mean(self) -> dict[str, dict[str, float]]:
        return {
            i: {j: self.sums[i][j] / self.counts[i][j] for j in self.tasks if self.counts[i][j] > 0}
            for i in self.tasks
        }


# ------------------------------------------------------------------------------------------ the lookahead
class LookaheadAffinity:
    """TAG's lookahead affinity during one training; the trainer calls :meth:`measure` when :meth:`due`.

    ``model``, ``optimizer``: the training's own (the optimiser must hold the shared parameters).
    ``infos``: the model's tasks, in any order. See the module docstring for the protocol.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: torch.optim.Optimizer,
        infos: list[TaskInfo],
        settings: LookaheadSettings,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.infos = list(infos)
        self.settings = settings
        self.shared = lookahead_parameters(model)
        optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
        if not self.shared or any(id(p) not in optimised for p in self.shared):
            raise ValueError("lookahead: the optimiser must hold every shared (non-head) model parameter")
        self.means = AffinityMean([info.name for info in self.infos])
        self.seconds = 0.0

    def due(self, step: int) -> bool:
        """True at training steps 0, k, 2k, ... (``step`` counts from 0 across epochs)."""
        return step % self.settings.every == 0

    def measure(
        self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]
    ) -> dict[str, dict[str, float]]:
        """One lookahead on a batch: returns this step's ``{i: {j: Z_ij}}`` and adds it to the mean.

        Leaves the model, the optimiser, the gradients and the RNG exactly as it found them.
        """
        started = time.perf_counter()
        device_type = inputs.device.type
        snapshot = TrainingSnapshot.capture(self.model, self.optimizer, self.shared)
        try:
            with torch.autocast(device_type, enabled=False):
                before, labelled, grads = self._losses_and_gradients(inputs, targets)
                step: dict[str, dict[str, float]] = {}
                for source in self.infos:
                    if not labelled[source.name]:
                        continue
                    snapshot.restore_values()
                    for param, _ in snapshot.grads:
                        param.grad = None
                    for p, grad in zip(self.shared, grads[source.name], strict=True):
                        p.grad = grad
                    self.optimizer.step()
                    snapshot.restore_rng()
                    with torch.no_grad():
                        after, _ = self._losses(inputs, targets)
                    step[source.name] = self._gains(source.name, before, after, labelled)
        finally:
            snapshot.restore()
        self.means.add(step)
        self.seconds += time.perf_counter() - started
        return step

    def result(self) -> LookaheadResult:
        """The mean affinity over every lookahead step so far."""
        return LookaheadResult(
            every=self.settings.every,
            steps=self.means.steps,
            seconds=self.seconds,
            affinity=self.means.mean(),
            samples={i: {j: n for j, n in row.items() if n > 0} for i, row in self.means.counts.items()},
        )

    # -------------------------------------------------------------------------------------- internals
    def _losses(
        self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, bool]]:
        """Every task's batch loss (as ``workers.losses.task_loss``) and whether the batch labels it."""
        _, outputs = self.model(inputs)
        losses, labelled = {}, {}
        for info in self.infos:
            total, count = kind_spec(info).loss(outputs[info.name], targets[info.name])
            losses[info.name] = total / count.clamp_min(1)
            labelled[info.name] = bool(count > 0)
        return losses, labelled

    def _losses_and_gradients(
        self, inputs: torch.Tensor, targets: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, float], dict[str, bool], dict[str, list[torch.Tensor | None]]]:
        with torch.enable_grad():
            losses, labelled = self._losses(inputs, targets)
            names = [info.name for info in self.infos if labelled[info.name]]
            grads: dict[str, list[torch.Tensor | None]] = {}
            for index, name in enumerate(names):
                grads[name] = list(
                    torch.autograd.grad(
                        losses[name], self.shared, retain_graph=index < len(names) - 1, allow_unused=True
                    )
                )
        return {n: float(loss.detach()) for n, loss in losses.items()}, labelled, grads

    def _gains(
        self,
        source: str,
        before: dict[str, float],
        after: dict[str, torch.Tensor],
        labelled: dict[str, bool],
    ) -> dict[str, float]:
        gains = {}
        for target, was in before.items():
            if not labelled[target] or was == 0.0:
                continue
            now = float(after[target])
            if not (math.isfinite(was) and math.isfinite(now)):
                logger.warning("lookahead: non-finite loss of %r after a step on %r: skipped", target, source)
                continue
            gains[target] = 1.0 - now / was
        return gains
