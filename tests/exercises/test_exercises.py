"""The exercise notebooks and the grading behind them.

Both directions prove an exercise is real: the solution notebook passes every check, and the
student notebook, where each solution is a stub, passes none. The grading itself shows the shrunk
counterexample of a failure and reproduces its verdicts. The checks of each notebook, which must
fail a wrong answer (a forgotten broadcast reduction, a gradient off by 1%, a NumPy call) and pass
a right one, are tested in ``test_exNN_*.py``, named like the notebook and its module of
``minidiff.checks``.
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest
from hypothesis import strategies as st

from minidiff.checks import grading
from minidiff.checks.ex02_backward import check_vjp
from minidiff.checks.grading import Mismatch, grade, summary

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "exercises" / "src").glob("ex*.md"))
VERDICT = re.compile(r"^(PASSED|FAILED|NOT DONE)\s+exercise (\S+)", re.MULTILINE)
CHECK_CALL = re.compile(r"^check_\w+\(", re.MULTILINE)


def _build_module():
    path = ROOT / "exercises" / "build.py"
    spec = importlib.util.spec_from_file_location("exercises_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


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
        "ex17_allreduce.md",
    } <= {p.name for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_in_sync(source):
    student = ROOT / "exercises" / f"{source.stem}.ipynb"
    assert student.read_text(encoding="utf-8") == build.student_notebook(source), (
        f"{student.name} is out of date: run `make exercises`"
    )


def test_build_check_cli():
    result = subprocess.run(
        [sys.executable, "-m", "exercises.build", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
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


def _execute(notebook, directory: Path):
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(directory)}},
    )
    client.execute()
    errors, text = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append(f"{output.ename}: {output.evalue}\n{cell.source}")
            elif output.output_type == "stream" and output.name == "stdout":
                text.append(output.text)
            elif "data" in output:
                text.append(output.data.get("text/plain", ""))
    return errors, "".join(text)


def _check_calls(notebook) -> int:
    return sum(len(CHECK_CALL.findall(c.source)) for c in notebook.cells if c.cell_type == "code")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solution_notebook_passes_every_check(source):
    notebook = jupytext.read(source)
    errors, text = _execute(notebook, source.parent)
    assert not errors, errors
    verdicts = VERDICT.findall(text)
    assert len(verdicts) == _check_calls(notebook) > 0, text
    assert all(status == "PASSED" for status, _ in verdicts), text
    assert text.rstrip().endswith("True"), "summary() should report that everything passed"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_notebook_passes_no_check(source):
    path = ROOT / "exercises" / f"{source.stem}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    errors, text = _execute(notebook, path.parent)
    assert not errors, "a stub must not stop Run All: " + "; ".join(errors)
    verdicts = VERDICT.findall(text)
    assert len(verdicts) == _check_calls(notebook) > 0, text
    assert all(status in ("NOT DONE", "FAILED") for status, _ in verdicts), text
    assert "Exercise " in text  # the stubs' messages name their exercise
    assert text.rstrip().endswith("False")


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
    errors, text = _execute(notebook, ROOT)
    assert not errors, errors
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
