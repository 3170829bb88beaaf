"""Multi-task models as a registry: architecture name -> one model family per input kind.

``make_family`` / ``build_model`` are what the trainer calls: they pick the family of the training's
architecture (default ``hard``: hard parameter sharing as in Standley et al. 2020; also ``cross-stitch``,
``mtan`` and, for images, ``nddr``, see :mod:`workers.models.registry`) for the dataset's input kind
(``vector`` -> MLP trunk + heads, ``image`` -> conv encoder + per-task decoders), validate the options,
and scale the widths so that the candidate's inference FLOPs are ``capacity`` times those of the
full-size network of the same architecture and tasks (see :mod:`workers.models.capacity`).
``architecture_cost`` prices a candidate in SNT (see :mod:`workers.models.cost`).
"""

from __future__ import annotations

from workers.models.base import ModelFamily, MultiTaskModel, MultiTaskNetwork, Stage
from workers.models.capacity import count_flops, family_flops, multiplier_for_capacity
from workers.models.columns import ColumnsModel
from workers.models.conv import ConvFamily, ConvOptions
from workers.models.cost import architecture_cost, candidate_cost
from workers.models.cross_stitch import CrossStitchOptions, CrossStitchUnit
from workers.models.mlp import MLPFamily, MLPOptions
from workers.models.mtan import MTANModel, MTANOptions
from workers.models.nddr import NDDROptions, NDDRUnit
from workers.models.registry import (
    ARCHITECTURES,
    DEFAULT_ARCHITECTURE,
    FAMILIES,
    Architecture,
    architectures_for,
    build_model,
    get_architecture,
    make_family,
)

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARCHITECTURE",
    "FAMILIES",
    "Architecture",
    "ColumnsModel",
    "ConvFamily",
    "ConvOptions",
    "CrossStitchOptions",
    "CrossStitchUnit",
    "MLPFamily",
    "MLPOptions",
    "MTANModel",
    "MTANOptions",
    "ModelFamily",
    "MultiTaskModel",
    "MultiTaskNetwork",
    "NDDROptions",
    "NDDRUnit",
    "Stage",
    "architecture_cost",
    "architectures_for",
    "build_model",
    "candidate_cost",
    "count_flops",
    "family_flops",
    "get_architecture",
    "make_family",
    "multiplier_for_capacity",
]
