"""Strategies: which trainings to run next, and the loss table predicted from what is measured.

See :mod:`grouping.strategies.base` for the interface the real search and ``bench/replay.py`` drive, and
``docs/strategies.md`` for each strategy, its settings and which data chose them. Importing this package
registers every strategy (``exhaustive``, ``esa``, ``hoa``, ``tag``, ``adaptive``) in :data:`STRATEGIES`.
"""

from grouping.strategies.adaptive import AdaptiveOptions, AdaptiveStrategy
from grouping.strategies.base import (
    Capacities,
    Measurement,
    Prediction,
    Problem,
    Round,
    Strategy,
    TrainingFailed,
    TrainingRequest,
    drive,
)
from grouping.strategies.cost import CostModel, compute_share, exhaustive_plan
from grouping.strategies.fixed import EsaStrategy, ExhaustiveStrategy, HoaStrategy
from grouping.strategies.registry import STRATEGIES, make_strategy, register
from grouping.strategies.surrogate import Prior
from grouping.strategies.tag import TagOptions, TagStrategy, tag_loss_table

__all__ = [
    "STRATEGIES",
    "AdaptiveOptions",
    "AdaptiveStrategy",
    "Capacities",
    "CostModel",
    "EsaStrategy",
    "ExhaustiveStrategy",
    "HoaStrategy",
    "Measurement",
    "Prediction",
    "Prior",
    "Problem",
    "Round",
    "Strategy",
    "TagOptions",
    "TagStrategy",
    "TrainingFailed",
    "TrainingRequest",
    "compute_share",
    "drive",
    "exhaustive_plan",
    "make_strategy",
    "register",
    "tag_loss_table",
]
