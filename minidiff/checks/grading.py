"""Grading for the exercise notebooks: run a property on many drawn cases, print a verdict.

:func:`grade` runs ``prop(case)`` for cases drawn by hypothesis. ``prop`` returns quietly when the
student's code is right on ``case`` and raises (usually :class:`Mismatch`, with a message saying
what was expected and what came back) when it is wrong. The verdict is one of

* ``PASSED``: every drawn case held;
* ``FAILED``: some case broke the property. Hypothesis then shrinks it, re-running ever simpler
  inputs, and replays the simplest failing one last; that last failure is the counterexample we
  show, with the equation the code has to satisfy;
* ``NOT DONE``: the code still raises ``NotImplementedError`` (the stub of the student notebook);
* ``REFUSED``: the code called a library function the exercise rebuilds (``forbid``, see
  :mod:`minidiff.checks.delegation`), so passing would prove nothing.

The draws are derandomized: the same code meets the same cases on every run, so a verdict can be
reproduced and a notebook re-run gives the same answer. Every verdict is also kept here, so the
last cell of a notebook can list them with :func:`summary`.

>>> def non_negative(n):
...     if abs(n) < 0:
...         raise Mismatch(f"abs({n}) is negative")
>>> grade("0.1", "abs is non-negative", "", non_negative, st.integers(), echo=False).status
'PASSED'
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import hypothesis
import numpy
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from .delegation import Delegated, forbidden

DEFAULT_EXAMPLES = 50

# Frames from these directories belong to the libraries; the student's code lives elsewhere.
_LIBRARIES = tuple(
    os.path.dirname(path) + os.sep
    for path in (hypothesis.__file__, numpy.__file__, os.path.dirname(__file__))
)

_SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    report_multiple_bugs=False,
    verbosity=Verbosity.quiet,
    # Health checks report on the test's strategies (slow draws, many rejected cases), which
    # are ours, not the student's: a warning about them would only confuse.
    suppress_health_check=list(HealthCheck),
)


class Mismatch(AssertionError):
    """The student's result is wrong on this case; the message says how."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``status`` is ``PASSED``, ``FAILED``, ``NOT DONE`` or
    ``REFUSED``."""

    passed: bool
    name: str
    message: str
    status: str = ""
    title: str = ""

    def __repr__(self) -> str:
        return f"<Verdict {self.status} exercise {self.name}>"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's result: the verdict was printed when the check ran."""


VERDICTS: list[Verdict] = []


def _record(verdict: Verdict) -> None:
    """Keep ``verdict``, replacing an earlier one of the same exercise (a re-run cell)."""
    for i, old in enumerate(VERDICTS):
        if old.name == verdict.name:
            VERDICTS[i] = verdict
            return
    VERDICTS.append(verdict)


def reset() -> None:
    """Forget every verdict recorded so far."""
    VERDICTS.clear()


def _where_raised(exc: BaseException) -> str:
    """The innermost line of the traceback outside the libraries: usually the student's."""
    frames = traceback.extract_tb(exc.__traceback__)
    chosen = [f for f in frames if not f.filename.startswith(_LIBRARIES)] or frames
    if not chosen:
        return ""
    last = chosen[-1]
    line = f": {last.line.strip()}" if last.line else ""
    return f"raised in {last.name}(){line}"


def _explain(exc: BaseException, caught: list) -> str:
    if isinstance(exc, Mismatch):
        text = str(exc)
    else:
        where = _where_raised(exc)
        text = f"your code raised {type(exc).__name__}: {exc}" + (f"\n{where}" if where else "")
    said = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    if said:
        text += "\non this case Python warned: " + "; ".join(said)
    return text


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def grade(
    exercise: str,
    title: str,
    equation: str,
    prop: Callable,
    cases: st.SearchStrategy,
    *,
    statement: str = "",
    describe: Callable = repr,
    static_check: Callable[[], str | None] | None = None,
    max_examples: int = DEFAULT_EXAMPLES,
    forbid: tuple[str, ...] = (),
    echo: bool = True,
) -> Verdict:
    """Check ``prop`` on up to ``max_examples`` cases drawn from ``cases``; print the verdict.

    ``equation`` is the book's label of the equation being checked (``eq-matmul-vjp``) and
    ``statement`` the equation itself in words, shown on failure. ``describe(case)`` writes a
    case for people (one line per input). ``static_check()``, run once the cases pass, returns a
    reason to fail that no input reveals (calling NumPy directly, a loop), or None. ``forbid``
    names the library functions (``"minidiff.diffusion.process.q_posterior"``) the exercise
    re-derives: a solution that calls one of them is ``REFUSED``.
    """
    heading = f"exercise {exercise} ({title}{', ' + equation if equation else ''})"
    failures: list = []
    not_done: list = []
    checked = 0

    @settings(max_examples=max_examples, **_SETTINGS)
    @given(cases)
    def run(case):
        nonlocal checked
        if not_done or calls:
            return
        # Warnings (overflow in exp...) are kept with the case that raised them and shown in
        # the verdict, instead of scrolling past once per drawn case.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                prop(case)
            except NotImplementedError as exc:
                not_done.append(exc)
                return
            except Delegated:
                return
            except HypothesisException:
                raise
            except Exception as exc:
                failures.append((case, exc, caught))
                raise
        checked += 1

    with forbidden(exercise, forbid) as calls:
        try:
            run()
            error = None
        except Exception as exc:
            error = exc
        reason = None
        if not (calls or not_done or error) and static_check:
            try:
                reason = static_check()
            except Delegated:
                pass

    if calls:
        status, lines = "REFUSED", [f"REFUSED {heading}", _indent(calls[0])]
    elif not_done:
        status, lines = "NOT DONE", [f"NOT DONE {heading}: {not_done[0]}"]
    elif error is not None:
        status, lines = "FAILED", [f"FAILED  {heading}"]
        shrunk = [(case, caught) for case, exc, caught in failures if exc is error]
        if shrunk:
            case, caught = shrunk[-1]
            lines.append("  the smallest failing case found:")
            lines.append(_indent(describe(case), "    "))
            lines.append(_indent(_explain(error, caught)))
        else:
            lines.append(
                _indent(f"the check itself could not run: {type(error).__name__}: {error}")
            )
        if statement:
            lines.append(
                f"  it must satisfy ({equation}): {statement}"
                if equation
                else f"  it must satisfy: {statement}"
            )
    elif reason:
        status, lines = "FAILED", [f"FAILED  {heading}", _indent(reason)]
    else:
        status, lines = "PASSED", [f"PASSED  {heading}: {checked} random cases"]

    verdict = Verdict(status == "PASSED", exercise, "\n".join(lines), status, title)
    _record(verdict)
    if echo:
        print(verdict.message)
    return verdict


def summary(echo: bool = True) -> bool:
    """Print a table of every verdict so far; True iff there is at least one and all passed."""
    if not VERDICTS:
        if echo:
            print("No checks have run yet: run the cells above first.")
        return False
    passed = sum(v.passed for v in VERDICTS)
    width = max(len(v.title) for v in VERDICTS)
    if echo:
        print(f"{'exercise':<9} {'check':<{width}}  verdict")
        for v in VERDICTS:
            print(f"{v.name:<9} {v.title:<{width}}  {v.status}")
        print(f"{passed} of {len(VERDICTS)} checks passed.")
    return passed == len(VERDICTS)
