"""Measurements of generated samples against data."""

from .distribution import energy_distance, median_bandwidth, mmd_rbf
from .tracking import Blob, Detections, Track, connected_components, detect, link, track
from .video import evaluate_clip, evaluate_clips
