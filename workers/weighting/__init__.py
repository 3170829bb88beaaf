"""Loss-weighting methods of the multi-task literature, as a registry: name -> class.

``equal`` is the paper's plain sum (Standley et al., 2020) and the default; the others are described,
with their papers, options and departures, in ``docs/weighting.md``.
"""

from workers.weighting.base import BackwardContext, EqualWeighting, LossWeighting
from workers.weighting.dtp import DTPWeighting
from workers.weighting.dwa import DWAWeighting
from workers.weighting.gradnorm import GradNormWeighting
from workers.weighting.mgda import MGDAWeighting
from workers.weighting.pareto import ParetoWeighting
from workers.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS: dict[str, type[LossWeighting]] = {
    cls.name: cls
    for cls in (
        EqualWeighting,
        UncertaintyWeighting,
        GradNormWeighting,
        DWAWeighting,
        DTPWeighting,
        MGDAWeighting,
        ParetoWeighting,
    )
}


def make_weighting(name: str, tasks: list[str], **options: object) -> LossWeighting:
    """The weighting method ``name`` for ``tasks``; a clear ValueError names the known methods/options."""
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise ValueError(
            f"weighting: unknown method {name!r}; choose one of {', '.join(sorted(WEIGHTINGS))}"
        ) from None
    return cls(tasks, **options)


__all__ = [
    "WEIGHTINGS",
    "BackwardContext",
    "DTPWeighting",
    "DWAWeighting",
    "EqualWeighting",
    "GradNormWeighting",
    "LossWeighting",
    "MGDAWeighting",
    "ParetoWeighting",
    "UncertaintyWeighting",
    "make_weighting",
]
