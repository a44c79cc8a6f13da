"""Telling generated clips from real ones, two ways.

* A **passive detector** (:mod:`.features`, :mod:`.classifier`): statistics a student can derive
  (each frame's radial power spectrum, the clip's temporal power spectrum, frame differences)
  fed to a logistic regression or a small MLP trained with minidiff's own autograd.
* A **watermark** (:mod:`.watermark`): a key written into the 3-D Fourier transform of the
  starting noise, read back by inverting DDIM, and tested against the null of plain noise.

:mod:`.roc` scores both (ROC, AUC, detection rate at 1% false positives, with bootstrap
intervals); :mod:`.attacks` are the edits an adversary makes; :mod:`.experiment` runs the whole
comparison on the shipped model and writes ``studies/detect/``.
"""

from .attacks import ATTACKS, apply_attack
from .classifier import LogisticDetector, MLPDetector, logistic_loss, train_detector
from .features import (
    clip_features,
    frame_difference_stats,
    radial_power_spectrum,
    temporal_power_spectrum,
)
from .roc import auc, roc_curve, threshold_at_fpr, true_positive_rate_at_fpr
from .watermark import WatermarkKey, key_distance, make_key, p_value, watermark_noise
