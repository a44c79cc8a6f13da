"""Shared test set-up: hypothesis profiles and the device the suite runs on.

`make test` runs with the derandomized ``ci`` profile, so every run draws the same examples;
``HYPOTHESIS_PROFILE=thorough`` draws many more. ``MINIDIFF_DEVICE=cuda`` runs everything on CuPy.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import minidiff as md

_quiet = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    suppress_health_check=_quiet,
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=100, suppress_health_check=_quiet)
settings.register_profile(
    "thorough", deadline=None, max_examples=1000, suppress_health_check=_quiet
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def device():
    """The device under test: MINIDIFF_DEVICE (cpu unless asked otherwise)."""
    return md.default_device()


@pytest.fixture
def xp(device):
    """The array module of the device under test."""
    return md.backend.module_for(device)


requires_gpu = pytest.mark.skipif(not md.backend.gpu_available(), reason="needs CuPy and a GPU")
