"""Property checks shared by the test suite and the exercise notebooks (one source of truth).

One module per exercise notebook, named like its source ``exercises/src/exNN_*.md``
(``ex01_arrays`` ... ``ex15_fusion``), holds exactly the ``check_*`` functions that notebook
calls. They stand on a shared base: ``grading`` (:func:`~minidiff.checks.grading.grade`, the
verdicts), ``gradients`` (the ``OP_SPECS`` registry, also used by the gradient tests),
``strategies`` (hypothesis strategies for arrays and shapes), ``compare`` (reading and comparing
a student's results) and ``diffusion_cases`` (the drawn cases of exercises 6 to 8).

The checks draw their cases with hypothesis, which ``pip install minidiff`` does not bring: it
comes with the ``exercises`` extra (and with ``dev``). The rest of minidiff never imports this
package, so it works without hypothesis.
"""

try:
    import hypothesis  # noqa: F401
except ImportError as missing:
    raise ModuleNotFoundError(
        "minidiff.checks (the checks of the exercise notebooks) needs hypothesis, which "
        'minidiff\'s "exercises" extra installs: pip install "minidiff[exercises]" '
        '(or, in a clone of the repository, pip install -e ".[exercises]")',
        name="hypothesis",
    ) from missing
