"""RelGAN (Nie, Narodytska and Patel, ICLR 2019): GSGAN's loop (`seqgan.algorithms.gsgan`) with
the paper's choices.

- the relativistic standard GAN loss (RSGAN, Jolicoeur-Martineau 2019): D learns whether a real
  sequence is more realistic than a generated one, L_D = -log sigmoid(D(x_r) - D(x_f)), and G the
  reverse (`seqgan.rl.relaxed.gan_losses`);
- the inverse temperature beta of the Gumbel-softmax annealed from 1 to beta_max (100 or 1000 in
  the paper), 'exp' by default (beta_max^(i / N)), over the adversarial G steps: here it reaches
  beta_max at the LAST step of the run's adversarial phase, where the official code fixes N at
  5,000 whatever the run's length;
- the paper's models, chosen in the shared sections (any algorithm may use them):
  `generator.cell: rmc` (the relational-memory generator, `seqgan.models.relational_memory`) and
  `discriminator.num_rep` (the CNN D with several embedded representations);
- Adam with the paper's settings: lr 1e-4 for G's adversarial steps and for D, betas (0.9, 0.999)
  (PyTorch's defaults); G's MLE pre-training as configured (the paper's code: lr 1e-2).

Settings: as GSGAN's, in the section `relgan:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from seqgan.algorithms.base import register
from seqgan.algorithms.gsgan import GSGAN, GSGANConfig


@dataclass
class RelGANConfig(GSGANConfig):
    """RelGAN's own settings (YAML section `relgan:`): GSGAN's, with the paper's defaults."""

    loss: str = "rsgan"
    """'rsgan' (the paper's relativistic standard GAN) or 'standard' (the GAN of Goodfellow et al.)."""


@register
class RelGAN(GSGAN):
    name = "relgan"
    summary = "RelGAN: GSGAN's Gumbel-softmax training with the relativistic loss and an annealed inverse temperature"
    Section = RelGANConfig
