"""Pure grouping logic (no torch, no ray): candidates, loss tables, the exact solver, HOA, budget curves.

Implements the network-selection step of Standley et al. (ICML 2020), "Which Tasks Should Be Learned Together
in Multi-task Learning?", with an exact dynamic programme (dense tables) or an exact sparse solver (tables of
any number of tasks, time limit and proven optimality gap) in place of the paper's unbounded branch and
bound, candidate groups for many tasks from the pairwise affinities (see ``docs/solver.md``), and the
loss-table file formats of ``docs/loss-tables.md``.
"""

from grouping.budgets import MAX_BUDGETS, budget_range, default_budgets, parse_budgets
from grouping.candidate_groups import CandidateGroupOptions, candidate_groups, group_candidates
from grouping.candidates import FULL, HALF, Candidate, pair_candidates, paper_candidates
from grouping.engines import auto_method
from grouping.hoa import MissingPairError, higher_order_approximation, hoa
from grouping.io import (
    FORMATS,
    LoadedTables,
    LossTableError,
    read_loss_table,
    read_loss_tables,
    write_loss_table,
)
from grouping.objective import OBJECTIVES
from grouping.results import BudgetCurve, Grouping, Network
from grouping.schema import LossRowModel, LossTableModel, loss_table_json_schema
from grouping.solver import (
    SERVE_RULES,
    GroupingSolver,
    InfeasibleBudget,
    budget_curve,
    solve,
)
from grouping.table import LossTable, TableRow

__all__ = [
    "FORMATS",
    "FULL",
    "HALF",
    "MAX_BUDGETS",
    "OBJECTIVES",
    "SERVE_RULES",
    "BudgetCurve",
    "Candidate",
    "CandidateGroupOptions",
    "Grouping",
    "GroupingSolver",
    "InfeasibleBudget",
    "LoadedTables",
    "LossRowModel",
    "LossTable",
    "LossTableError",
    "LossTableModel",
    "MissingPairError",
    "Network",
    "TableRow",
    "auto_method",
    "budget_curve",
    "budget_range",
    "candidate_groups",
    "default_budgets",
    "group_candidates",
    "higher_order_approximation",
    "hoa",
    "loss_table_json_schema",
    "pair_candidates",
    "paper_candidates",
    "parse_budgets",
    "read_loss_table",
    "read_loss_tables",
    "solve",
    "write_loss_table",
]
