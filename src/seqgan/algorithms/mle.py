"""The maximum-likelihood baseline: G trained by teacher forcing only (no discriminator).

The paper's MLE row trains the same G for as many epochs as SeqGAN's pre-training and adversarial
epochs together (`configs/oracle_mle.yaml`: 120 + 200). Every algorithm's `mle` phase is this one
unless it brings its own.
"""

from __future__ import annotations

from seqgan.algorithms.base import Algorithm, register


@register
class MLE(Algorithm):
    name = "mle"
    summary = "maximum likelihood only: G trained by teacher forcing, no discriminator"
