"""The exercise notebooks and the grading behind them.

Both directions prove an exercise is real: the solution notebook passes every check, and the
student notebook, where each solution is a stub, passes none. The grading itself shows the shrunk
counterexample of a failure and reproduces its verdicts. The checks of each notebook, which must
fail a wrong answer (a forgotten broadcast reduction, a gradient off by 1%, a NumPy call) and pass
a right one, are tested in ``test_exNN_*.py``, named like the notebook and its module of
``minidiff.checks``.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hypothesis import strategies as st

from minidiff.checks import grading
from minidiff.checks.ex02_backward import check_vjp
from minidiff.checks.grading import Mismatch, grade, summary

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "exercises" / "src").glob("ex*.md"))


def _load(name: str):
    path = ROOT / "exercises" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"exercises_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load("build")
run = _load("run")


# --- (a) the committed student notebooks are what the builder makes --------------------------


def test_sources_exist():
    assert {
        "ex01_arrays.md",
        "ex02_backward.md",
        "ex03_layers.md",
        "ex04_attention.md",
        "ex05_encodings.md",
        "ex06_forward.md",
        "ex07_reverse.md",
        "ex08_ddim.md",
        "ex09_patches.md",
        "ex10_guidance.md",
        "ex11_metrics.md",
        "ex12_training.md",
        "ex13_intervals.md",
        "ex14_continuation.md",
        "ex15_fusion.md",
        "ex16_detect.md",
        "ex17_allreduce.md",
    } <= {p.name for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_in_sync(source):
    student = ROOT / "exercises" / f"{source.stem}.ipynb"
    assert student.read_text(encoding="utf-8") == build.student_notebook(source), (
        f"{student.name} is out of date: run `make exercises`"
    )


def _module(*args: str) -> subprocess.CompletedProcess:
    """``python -m <args>`` from the repository root, its output captured."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_build_check_cli():
    result = _module("exercises.build", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_student_notebook_has_no_solutions():
    for source in SOURCES:
        text = build.student_notebook(source)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        notebook = nbformat.reads(text, as_version=4)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        assert all(c.id == f"{source.stem}-{i:02d}" for i, c in enumerate(notebook.cells))


def test_stub_keeps_indentation_and_names_the_exercise():
    source = (
        "def f(x):\n"
        "    y = 1\n"
        "    # BEGIN SOLUTION Exercise 2.3: write the backward of matmul (eq-matmul-vjp)\n"
        "    return x @ y\n"
        "    # END SOLUTION\n"
        "z = 2"
    )
    stripped, blocks = build.strip_solutions(source)
    assert blocks == 1
    assert stripped == (
        "def f(x):\n"
        "    y = 1\n"
        "    raise NotImplementedError("
        '"Exercise 2.3: write the backward of matmul (eq-matmul-vjp)")\n'
        "z = 2"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "def f():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION",
        "def f():\n    # BEGIN SOLUTION Exercise 1.1: x\n    pass",
        "def f():\n    pass\n    # END SOLUTION",
        "# BEGIN SOLUTION Exercise 1.1: x\nx = 1\n# END SOLUTION",
    ],
)
def test_bad_markers_are_rejected(bad):
    with pytest.raises(build.MarkerError):
        build.strip_solutions(bad)


# --- (b), (c) running the notebooks -------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_passes_every_check(source):
    ran = run.run_solution(source)
    assert ran.all("PASSED"), ran.errors or ran.text
    assert ran.text.rstrip().endswith("True"), "summary() should report that everything passed"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_passes_no_check(source):
    ran = run.run_student(source)
    assert not ran.errors, "a stub must not stop Run All: " + "; ".join(ran.errors)
    assert ran.all("NOT DONE", "FAILED"), ran.text
    assert "Exercise " in ran.text  # the stubs' messages name their exercise
    assert ran.text.rstrip().endswith("False")


def test_run_cli_tabulates_a_notebook_and_refuses_an_unknown_one():
    result = _module("exercises.run", "ex01_arrays")
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ex01_arrays"))
    assert "PASSED" in row and "NOT DONE" in row and row.endswith("| yes |"), row
    unknown = _module("exercises.run", "ex99_nothing")
    assert unknown.returncode == 2 and "no exercise notebook named ex99_nothing" in unknown.stderr


def test_static_check_sees_numpy_in_a_notebook_cell():
    """In a kernel, the source of a function typed into a cell is readable: NumPy is caught."""
    cell = (
        "import numpy as np\n"
        "from minidiff.checks.ex01_arrays import check_standardize\n"
        "def standardize(x, axis=-1, eps=1e-5):\n"
        "    centered = x - x.mean(axis=axis, keepdims=True)\n"
        "    return centered / np.sqrt((centered**2).mean(axis=axis, keepdims=True) + eps)\n"
        "check_standardize(standardize)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    ran = run.execute(notebook, ROOT)
    assert not ran.errors, ran.errors
    text = ran.text
    assert text.startswith("FAILED  exercise 1.1") and "np (line 5)" in text, text


# --- (d) the grading ------------------------------------------------------------------------


def test_grade_shows_the_shrunk_counterexample():
    def below_ten(n):
        if n >= 10:
            raise Mismatch(f"{n} is not below 10")

    verdict = grade(
        "0.1",
        "below ten",
        "eq-none",
        below_ten,
        st.integers(0, 10_000),
        statement="n < 10",
        describe=lambda n: f"n = {n}",
        echo=False,
    )
    assert not verdict.passed and verdict.status == "FAILED"
    assert verdict.message.splitlines()[:3] == [
        "FAILED  exercise 0.1 (below ten, eq-none)",
        "  the smallest failing case found:",
        "    n = 10",
    ]
    assert "10 is not below 10" in verdict.message
    assert "it must satisfy (eq-none): n < 10" in verdict.message


def test_grade_reports_an_exception_with_its_line():
    def crash(n):
        return [1, 2][n]

    verdict = grade("0.2", "index", "", crash, st.integers(0, 5), echo=False)
    assert verdict.status == "FAILED"
    assert verdict.message.splitlines()[:3] == [
        "FAILED  exercise 0.2 (index)",
        "  the smallest failing case found:",
        "    2",
    ]
    assert "your code raised IndexError" in verdict.message
    assert "return [1, 2][n]" in verdict.message


def test_grade_is_reproducible():
    def wrong(g, a, b):
        return g * b, g * a

    first = check_vjp("2.1", wrong, op="mul")
    second = check_vjp("2.1", wrong, op="mul")
    assert first.message == second.message


def test_summary(capsys):
    assert summary() is False
    grade("a", "passes", "", lambda n: None, st.integers(), echo=False)
    assert summary() is True
    grade("b", "fails", "", lambda n: 1 / 0, st.integers(), echo=False)
    grade("a", "passes", "", lambda n: None, st.integers(), echo=False)
    assert summary() is False
    assert [v.name for v in grading.VERDICTS] == ["a", "b"]
    table = capsys.readouterr().out
    assert "1 of 2 checks passed." in table
