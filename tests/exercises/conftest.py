"""Every test of the exercises starts and ends with no verdicts recorded by the grading."""

import pytest

from minidiff.checks import grading


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()
