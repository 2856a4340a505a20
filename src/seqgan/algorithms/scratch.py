"""ScratchGAN-style training (de Masson d'Autume, Rosca, Rae and Mohamed, NeurIPS 2019): a language
GAN with NO maximum-likelihood pre-training.

1. no `mle` phase, no D pre-training: G starts from its initialisation.
2. `adversarial`: per epoch, g_steps G steps, then d_steps D steps.
   - G step: sample a batch; a recurrent D scores every prefix, r_t = its logit of "real" for
     y_1..y_t (`Discriminator.prefix_scores`); each token's return is the discounted sum of the
     rewards from it on, R_t = sum_{s >= t} gamma^(s - t) r_s (gamma = `scratch.discount`, the
     paper's 0.23), less the batch mean of R_t at that step (`seqgan.rl.returns`); G takes the
     REINFORCE step -mean_{b,t} log G(y_t | y_<t) * A_t.
   - D step: a batch of real sequences against a fresh batch of samples, every prefix classified
     (binary cross-entropy of each step's logit, padding left out).

The paper's large batches are `adversarial.batch_size` (its 512 in the configs here). Left out:
its regularisers (discriminator weight decay and dropout are D's own settings; no gradient
penalty, no pre-trained embeddings). Under torchrun the baseline is each rank's batch mean.
D must be `discriminator.kind: rnn` with `bidirectional: false` (a prefix's score may not read
the future) and `rnn_pooling: last`. Unconditional runs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seqgan.algorithms.base import Context, register
from seqgan.algorithms.common import clipped_step
from seqgan.algorithms.gan import GAN
from seqgan.algorithms.gsgan import check_relaxed_config
from seqgan.config import ConfigError, ExperimentConfig
from seqgan.distributed import all_reduce_sum, call
from seqgan.errors import NonFiniteLossError
from seqgan.models.generator import Generator
from seqgan.rl.losses import masked_mean, pg_loss
from seqgan.rl.returns import discounted_returns, mean_baseline_advantages


@dataclass
class ScratchConfig:
    """ScratchGAN's own settings (YAML section `scratch:`)."""

    discount: float = 0.23
    """gamma of the per-token returns R_t = sum_{s >= t} gamma^(s - t) r_s (the paper: 0.23)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"scratch.discount={self.discount}: use a number in [0, 1]")


@register
class Scratch(GAN):
    name = "scratch"
    summary = "ScratchGAN-style: no pre-training, dense per-prefix rewards of a recurrent D, discounted, mean baseline"
    Section = ScratchConfig
    uses = ("data", "generator", "discriminator", "adversarial", "eval", "checkpoint", "condition")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.add_gan_optimizers()
        self.device = ctx.device

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        check_relaxed_config(cfg)  # the same unused settings: rollouts, D rounds, conditions
        d = cfg.discriminator
        if d.kind != "rnn" or d.bidirectional or d.rnn_pooling != "last":
            raise ConfigError(
                "algorithm=scratch scores every prefix with a left-to-right D: set discriminator.kind=rnn, "
                "discriminator.bidirectional=false and discriminator.rnn_pooling=last"
            )

    def epochs(self, phase: str) -> int:
        return self.cfg.adversarial.epochs if phase == "adversarial" else 0

    # ---------------------------------------------------------------- ALGO LOGIC

    def discriminator_update(self) -> float:
        self.steps["d"] += 1
        return self.discriminator_step()

    def samples(self, rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.generator.eval()
        return self.generator.sample(rows, self.data.length, self.streams.sample, return_noise=True)

    def generator_step(self) -> dict[str, float]:
        """One REINFORCE step on a fresh batch with D's per-prefix logits as dense rewards."""
        a, g, d = self.cfg.adversarial, self.generator, self.discriminator
        samples, noise = self.samples(a.batch_size // self.dist.world)  # (B, T)
        d.eval()
        with torch.no_grad():
            rewards = d.prefix_scores(samples)  # (B, T): r_t, D's logit of "real" for y_1..y_t
        mask = g.mask(samples)
        adv = mean_baseline_advantages(discounted_returns(rewards, self.cfg.algo.discount, mask), mask)
        g.train()
        loss = pg_loss(call(self.wrappers["generator"], Generator.log_probs, samples, noise=noise), adv, "none", mask)
        values = torch.stack([loss.detach(), masked_mean(rewards, mask)]).tolist()
        if not math.isfinite(values[0]):
            raise NonFiniteLossError(f"the REINFORCE loss is {values[0]}")
        clipped_step(g.parameters(), self.optimizers["adversarial"].optimizer, loss, a.grad_clip)
        loss_sum, reward_sum = all_reduce_sum(values, self.dist, self.device)
        return {"g_loss": loss_sum / self.dist.world, "mean_reward": reward_sum / self.dist.world}

    def discriminator_step(self) -> float:
        """Every prefix of a real batch against every prefix of a fresh batch of samples."""
        a, d, data = self.cfg.adversarial, self.discriminator, self.data
        idx = torch.randint(len(data.train), (a.batch_size,), generator=self.streams.shuffle)[self.dist.rows(a.batch_size)]
        real = data.train[idx.to(data.train.device)]
        fake, _ = self.samples(len(real))
        x = torch.cat([real, fake])  # (2B, T)
        target = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).to(x.device)[:, None].expand(x.shape)
        d.train()
        logits = call(self.wrappers["discriminator"], type(d).prefix_scores, x)  # (2B, T)
        mask = self.generator.mask(x)
        loss = masked_mean(F.binary_cross_entropy_with_logits(logits, target, reduction="none"), mask)
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(f"the discriminator loss is {value}")
        clipped_step(d.parameters(), self.optimizers["discriminator"].optimizer, loss, a.grad_clip)
        return all_reduce_sum([value], self.dist, self.device)[0] / self.dist.world
