"""`taskgroup solve`: output formats, options, and one-line errors (exit status 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main
from grouping import read_loss_table
from grouping.candidates import Candidate
from grouping.io import write_loss_table
from grouping.table import LossTable

ROOT = Path(__file__).resolve().parents[2]
C = Candidate


def small_tables(tmp_path: Path) -> tuple[Path, Path]:
    """A 3-task table (paper format for the selection, CSV for the scoring losses, equal values)."""
    sel = LossTable.from_losses(
        ["a", "b", "c"],
        {
            C(("a",), 0.5): {"a": 1.2},
            C(("a",)): {"a": 1.0},
            C(("b",)): {"b": 1.0},
            C(("c",)): {"c": 1.0},
            C(("a", "b")): {"a": 0.5, "b": 0.6},
            C(("a", "c")): {"a": 0.9, "c": 0.9},
            C(("b", "c")): {"b": 0.9, "c": 0.8},
            C(("a", "b", "c")): {"a": 0.8, "b": 0.8, "c": 0.8},
        },
    )
    test = LossTable(sel.tasks, [sel[c] for c in sel])
    return write_loss_table(sel, tmp_path / "sel.txt"), write_loss_table(test, tmp_path / "test.csv")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["solve", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_output(tmp_path, capsys):
    sel, test = small_tables(tmp_path)
    code, out, err = run(capsys, sel, "--scoring", test, "--tasks", "a,b,c", "--budgets", "1:2")
    assert code == 0 and err == ""
    rows = [line.split(None, 4) for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows == [
        ["1", "1", "2.40000", "2.40000", "abc(a,b,c)"],
        ["1.5", "1", "2.40000", "2.40000", "abc(a,b,c)"],  # a@0.5 (1.2) does not beat a in abc (0.8)
        ["2", "2", "1.90000", "1.90000", "ab(a,b) + abc(c)"],  # a and b auxiliary in abc
    ]
    assert "budget" in out and "networks (served tasks)" in out


def test_json_output_has_the_design_shape(tmp_path, capsys):
    sel, test = small_tables(tmp_path)
    code, out, _ = run(
        capsys, sel, "--scoring", test, "--budget", "2", "--format", "json", "--tasks", "a,b,c"
    )
    assert code == 0
    data = json.loads(out)
    assert data["tasks"] == ["a", "b", "c"] and data["objective"] == "sum" and data["serve_by"] == "selection"
    (record,) = data["curve"]
    assert record["budget"] == 2.0 and record["cost"] == 2.0
    assert record["selection_total"] == pytest.approx(1.9) and record["scoring_total"] == pytest.approx(1.9)
    assert [(n["tasks"], n["serves"], n["predicted"]) for n in record["networks"]] == [
        (["a", "b"], ["a", "b"], False),
        (["a", "b", "c"], ["c"], False),
    ]


def test_output_file(tmp_path, capsys):
    sel, _ = small_tables(tmp_path)
    target = tmp_path / "out" / "curve.json"
    code, out, _ = run(capsys, sel, "--budgets", "1,2", "-o", target)
    assert code == 0 and str(target) in out
    assert [g["budget"] for g in json.loads(target.read_text())["curve"]] == [1.0, 2.0]


def test_options_hoa_objective_weights_serve_by(tmp_path, capsys):
    sel, test = small_tables(tmp_path)
    code, out, _ = run(capsys, sel, "--hoa", "--budget", "1", "--format", "json")
    net = json.loads(out)["curve"][0]["networks"][0]
    assert code == 0 and net["predicted"] is True and net["tasks"] == ["t0", "t1", "t2"]
    # HOA of t0 in the 3-task network: mean(0.5, 0.9)
    assert net["selection_losses"]["t0"] == pytest.approx(0.7)
    code, out, _ = run(capsys, sel, "--hoa", "--budget", "1")
    assert code == 0 and "t0,t1,t2*(t0,t1,t2)" in out and "predicted by HOA" in out
    code, out, _ = run(
        capsys, sel, "--objective", "relative", "--weights", "t0=2", "--budget", "1", "--format", "json"
    )
    data = json.loads(out)
    assert data["objective"] == "relative" and data["weights"]["t0"] == 2.0
    assert data["curve"][0]["selection_total"] == pytest.approx(2 * 0.8 / 1.0 + 0.8 + 0.8)
    code, out, err = run(capsys, sel, "--scoring", test, "--serve-by", "scoring", "--budget", "2")
    assert code == 2 and "the scoring table's tasks ['a', 'b', 'c'] differ" in err  # test.csv names a, b, c
    args = (
        "--scoring",
        test,
        "--tasks",
        "a,b,c",
        "--serve-by",
        "scoring",
        "--budget",
        "2",
        "--format",
        "json",
    )
    code, out, _ = run(capsys, sel, *args)
    assert code == 0 and json.loads(out)["serve_by"] == "scoring"


def test_json_input_with_embedded_scoring(tmp_path, capsys):
    sel, _ = small_tables(tmp_path)
    from grouping.io import read_loss_table

    table = read_loss_table(sel)
    path = write_loss_table(table, tmp_path / "both.json", scoring=table)
    code, out, _ = run(capsys, path, "--budget", "2", "--format", "json")
    assert code == 0 and json.loads(out)["curve"][0]["scoring_total"] == pytest.approx(1.9)
    code, out, _ = run(capsys, sel, "--input-format", "paper", "--budget", "1")
    assert code == 0


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("0.1\t0.2\n0.3\tx\n", (), "{file}:2: field 2 (task t1): 'x' is not a number"),
        (
            "0.1\t0.2\n0.3\t\n\t0.4\t0.5\n",
            (),
            "{file}:3: expected 2 tab-separated fields (as on line 1), found 3",
        ),
        ("0.1\t\n0.3\t\n", (), "{file}: task t1 (column 2) has no loss on any line: no network trains it"),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--budget", "0.25"), "budget 0.25 SNT cannot serve every task"),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--budgets", "1:x"), "--budgets: expected START:STOP[:STEP]"),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--budgets", "3:1"), "--budgets: budget range is empty"),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--weights", "t0"), "--weights: expected TASK=WEIGHT"),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--weights", "zz=1"), "weights: unknown task 'zz'"),
        (
            "0.1\t0.2\n0.3\t\n\t0.4\n",
            ("--tasks", "a,b,c"),
            "{file}:1: the file has 2 loss columns but 3 task",
        ),
        ("0.1\t0.2\n0.3\t\n\t0.4\n", ("--hoa", "--objective", "relative"), None),
        (
            "0.1\t0.2\t0.3\n0.3\t\t\n\t0.4\t\n\t\t0.5\n0.1\t0.1\t\n",
            ("--hoa",),
            "HOA cannot predict network t0,t1,t2: no pair network t0,t2, t1,t2",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, args, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    code, out, err = run(capsys, path, *args)
    if message is None:  # a valid combination: no error
        assert code == 0, err
        return
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("taskgroup solve: error: ")
    assert message.format(file=path) in err


def test_missing_file_and_unknown_extension(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path / "nope.txt")
    assert code == 2 and err.strip() == f"taskgroup solve: error: {tmp_path / 'nope.txt'}: no such file"
    (tmp_path / "t.xlsx").write_text("x")
    code, _, err = run(capsys, tmp_path / "t.xlsx")
    assert code == 2 and "unknown file extension '.xlsx'" in err


def test_solve_imports_neither_torch_nor_ray(tmp_path):
    sel, _ = small_tables(tmp_path)
    code = (
        "import sys\n"
        "from api.cli import main\n"
        f"assert main(['solve', {str(sel)!r}, '--budget', '1']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray'))\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


EXAMPLE_GROUPINGS = {
    1.0: "sdnke(s,d,n,k,e)",
    1.5: "sdnke(s,n,k,e) + d@0.5(d)",
    2.0: "sd(s,d) + nke(n,k,e)",
    2.5: "sd(s,d) + n@0.5(n) + ke(k,e)",
    3.0: "sd(s,d) + sn(n) + ke(k,e)",
    3.5: "sd(s,d) + sn(n) + nk(k) + e@0.5(e)",
    4.0: "sd(s,d) + sn(n) + nk(k) + ne(e)",
    4.5: "sd(s,d) + sn(n) + nk(k) + ne(e)",
    5.0: "sd(s,d) + sn(n) + nk(k) + ne(e)",
}


def test_readme_example_gives_the_known_groupings(capsys):
    """The README's solve example on the shipped tables: the groupings printed, and every selection total
    equal to the optimum of the independent MILP formulation (grouping.milp, HiGHS)."""
    from grouping.milp import milp_solve

    examples = ROOT / "examples"
    code, out, err = run(
        capsys, examples / "losses.txt", "--scoring", examples / "losses_test.txt", "--budgets", "1:5:0.5"
    )
    assert code == 0, err
    rows = [
        line.split(maxsplit=4) for line in out.splitlines() if line[:6].strip().replace(".", "").isdigit()
    ]
    assert {float(r[0]): r[4] for r in rows} == EXAMPLE_GROUPINGS
    table = read_loss_table(examples / "losses.txt")
    for budget, _, selection, _, _ in rows:
        assert float(selection) == pytest.approx(milp_solve(table, float(budget)).value, abs=5e-6)
