"""Result models: a grouping (one budget) and a budget curve, in the one JSON shape of ``DESIGN.md``.

``BudgetCurve.model_dump(mode="json")`` is what ``taskgroup solve --format json`` prints and what the API
serves::

    {"tasks": [...], "objective": "sum", "serve_by": "selection",
     "curve": [{"budget", "cost", "selection_total", "scoring_total",
                "networks": [{"tasks", "capacity", "cost", "serves", "predicted", ...}], "optimality_gap"}]}

Fields beyond these may be added; these keep their names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Network(BaseModel):
    """One chosen network: what it trains, what it costs, which tasks it serves."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(description="tasks the network is trained on (served ones and auxiliary ones)")
    capacity: float = Field(description="network size, 1 = full size")
    cost: float = Field(description="inference cost in SNT")
    serves: list[str] = Field(description="tasks served by this network (lowest selection loss among chosen)")
    predicted: bool = Field(description="true if its selection losses were predicted (HOA), not measured")
    label: str = Field(description="readable name, e.g. 'sdn' or 'seg,depth@0.5'")
    selection_losses: dict[str, float] = Field(description="selection loss of each task the network trains")
    scoring_losses: dict[str, float] | None = Field(
        None, description="scoring loss of each task it trains; null without a scoring row for it"
    )
    scoring_serves: list[str] | None = Field(
        None,
        description="tasks this network is credited with in scoring_total (differs from serves only "
        "with serve_by='scoring'); null when scoring_total is null",
    )


class Grouping(BaseModel):
    """The best grouping at one budget."""

    model_config = ConfigDict(extra="forbid")

    budget: float = Field(description="the budget in SNT")
    cost: float = Field(description="total cost of the chosen networks in SNT (<= budget)")
    selection_total: float = Field(description="objective on the selection table (what was minimised)")
    scoring_total: float | None = Field(
        None, description="objective on the scoring table; null without a scoring table or row for a network"
    )
    networks: list[Network] = Field(description="chosen networks, in the order of the first task each serves")
    optimality_gap: float | None = Field(
        None,
        description="proven relative optimality gap of selection_total: (total - lower bound) / |total|; "
        "0 when proven optimal (always for the dynamic programme, and for the sparse solver when it "
        "finished within its time limit); > 0 when a time limit stopped the sparse solver: the optimum "
        "lies in [total - gap * |total|, total]; null where no solver produced the record",
    )

    def served_by(self) -> dict[str, str]:
        """task -> label of the network serving it (selection rule)."""
        return {t: net.label for net in self.networks for t in net.serves}


class BudgetCurve(BaseModel):
    """The best grouping for every budget of a sweep, budgets ascending."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str]
    objective: str = Field(description="'sum' (the paper's) or 'relative'")
    serve_by: str = Field(description="how scoring_total serves tasks: 'selection' (default) or 'scoring'")
    weights: dict[str, float] = Field(default_factory=dict, description="per-task weights (default 1)")
    curve: list[Grouping]

    def at(self, budget: float, tolerance: float = 1e-9) -> Grouping:
        """The record for ``budget`` (within ``tolerance`` SNT; KeyError naming the budgets available)."""
        for record in self.curve:
            if abs(record.budget - budget) <= tolerance:
                return record
        raise KeyError(f"no grouping for budget {budget}; budgets: {[g.budget for g in self.curve]}")


__all__ = ["BudgetCurve", "Grouping", "Network"]
