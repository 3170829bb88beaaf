"""The house rules that keep the code livable, checked on every run (DESIGN.md, "Layout" and "Style"):

* the import contract (import-linter's contracts in pyproject.toml): api -> search -> workers -> grouping,
  never back; grouping, the store's records and the /solve path import neither torch nor ray;
* at run time, the /solve route and `taskgroup solve` load neither torch nor ray (sys.modules);
* no function longer than 80 lines outside bench/;
* no module-level mutable state in search/ (locks, events, caches: a job's control state is an object).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("grouping", "workers", "search", "api", "tests")
MAX_FUNCTION_LINES = 80


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (it comes with the dev extra: make install)")
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_solve_route_loads_neither_torch_nor_ray() -> None:
    code = (
        "import sys\n"
        "from api.routers.solve import SolveInput, compute\n"
        "from grouping import LossTable, Candidate\n"
        "from grouping.service import SolveOptions\n"
        "table = LossTable.from_losses(['a', 'b'], {Candidate(('a', 'b')): {'a': 1, 'b': 2}})\n"
        "curve = compute(SolveInput(table, None, SolveOptions(budgets='1')), max_tasks=12)\n"
        "assert curve.curve[0].selection_total == 3\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.name, node.end_lineno - node.lineno + 1)  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert long == [], "split these functions: " + ", ".join(long)


SYNC_CALLS = {"Lock", "RLock", "Event", "Condition", "Semaphore", "Queue", "Thread", "local"}
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque"}
ALLOWED_STATE = {"search/store/migrations.py:MIGRATIONS"}
"""The schema upgrades: a registry filled by ``@migration`` when its module is imported, read-only after."""


def _module_state(path: Path, root: Path = ROOT) -> list[str]:
    """Module-level names bound to mutable containers or synchronisation objects (runtime state). Constant
    registries are read-only mappings (``MappingProxyType``), frozensets or tuples."""
    found = []
    where = path.relative_to(root).as_posix()
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        called = ""
        if isinstance(value, ast.Call):
            func = value.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        literal = ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp
        container = isinstance(value, literal)
        for name in (t.id for t in targets if isinstance(t, ast.Name)):
            if name == "__all__" or f"{where}:{name}" in ALLOWED_STATE:
                continue
            if called in SYNC_CALLS:
                found.append(f"{where}: {name} = {called}(...)")
            elif container or called in MUTABLE_CALLS:
                found.append(f"{where}: {name} (a mutable {called or type(value).__name__})")
    return found


def test_search_holds_no_module_level_mutable_state() -> None:
    state = [item for path in sorted((ROOT / "search").rglob("*.py")) for item in _module_state(path)]
    assert state == [], "keep this state in an object: " + "; ".join(state)


def test_the_state_check_would_catch_what_the_issue_found(tmp_path: Path) -> None:
    """The two kinds of module state search/ used to have: a lock and a dict of events."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import threading\n"
        "FIT_LOCK = threading.Lock()\n"
        "_CANCEL_EVENTS: dict[str, object] = {}\n"
        "REGISTRY = MappingProxyType({'a': 1})\n"
    )
    found = [line.split(": ", 1)[1] for line in _module_state(probe, tmp_path)]
    assert found == ["FIT_LOCK = Lock(...)", "_CANCEL_EVENTS (a mutable Dict)"]
