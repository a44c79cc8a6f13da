"""hint() reveals an exercise's hints in order, says when there are no more, names the known
exercises for an unknown one, and every exercise of the notebooks has at least one hint."""

import re
import sys
import types
from pathlib import Path

import pytest

from minidiff.checks import hints

SOURCES = Path(__file__).resolve().parents[2] / "exercises" / "src"


@pytest.fixture(autouse=True)
def fresh():
    hints.reset()
    yield
    hints.reset()


def test_hints_come_in_order_then_run_out(capsys):
    given = hints.all_hints()["7.1"]
    shown = [hints.hint("7.1") for _ in given]
    assert [text.split(": ", 1)[1] for text in shown] == given
    assert shown[0].startswith(f"Hint 1 of {len(given)} for exercise 7.1")
    assert "No more hints for exercise 7.1" in hints.hint("7.1")
    assert "No more hints" in capsys.readouterr().out


def test_a_level_shows_that_hint_without_moving_on():
    assert hints.hint("7.1", level=2).startswith("Hint 2 of")
    assert hints.hint("7.1").startswith("Hint 1 of")
    with pytest.raises(ValueError, match="has hints 1 to"):
        hints.hint("7.1", level=99)


def test_an_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"no hints for exercise '99.9'.*1\.1, 1\.2"):
        hints.hint("99.9")


def test_a_duplicate_exercise_is_an_error(monkeypatch):
    twin = types.ModuleType("minidiff.checks.zz_twin")
    twin.HINTS = {"7.1": ["again"]}
    monkeypatch.setitem(sys.modules, twin.__name__, twin)
    real = hints.pkgutil.iter_modules

    def with_twin(path):
        yield from real(path)
        yield types.SimpleNamespace(name="zz_twin")

    monkeypatch.setattr(hints.pkgutil, "iter_modules", with_twin)
    with pytest.raises(ValueError, match="hints for exercise 7.1 are given twice"):
        hints.all_hints()


def test_every_exercise_of_the_notebooks_has_hints():
    exercises = set()
    for source in SOURCES.glob("ex*.md"):
        exercises |= set(re.findall(r"# BEGIN SOLUTION Exercise (\d+\.\d+)", source.read_text()))
    known = hints.all_hints()
    assert exercises - set(known) == set(), sorted(exercises - set(known))
    assert all(1 <= len(known[e]) <= 3 for e in exercises)


def test_every_notebook_imports_hint_and_says_how_to_use_it():
    for source in SOURCES.glob("ex*.md"):
        text = source.read_text()
        assert "from minidiff.checks.hints import hint" in text, source.name
        assert '`hint("' in text, source.name
