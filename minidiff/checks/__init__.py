"""Property checks shared by the test suite and the exercise notebooks (one source of truth).

One module per exercise notebook, named like its source ``exercises/src/exNN_*.md``
(``ex01_arrays`` ... ``ex15_fusion``), holds exactly the ``check_*`` functions that notebook
calls. They stand on a shared base: ``grading`` (:func:`~minidiff.checks.grading.grade`, the
verdicts), ``gradients`` (the ``OP_SPECS`` registry, also used by the gradient tests),
``strategies`` (hypothesis strategies for arrays and shapes), ``compare`` (reading and comparing
a student's results) and ``diffusion_cases`` (the drawn cases of exercises 6 to 8).
"""
