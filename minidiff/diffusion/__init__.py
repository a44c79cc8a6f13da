"""Diffusion: noise schedules, the forward and reverse chains, samplers and losses."""

from . import losses, process, samplers, schedules
from .schedules import NoiseSchedule
