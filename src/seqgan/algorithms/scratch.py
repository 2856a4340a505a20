"""ScratchGAN-style training (de Masson d'Autume, Rosca, Rae and Mohamed, NeurIPS 2019): a language
GAN with NO maximum-likelihood pre-training.

1. no `mle` phase, no D pre-training: G starts from its initialisation.
2. `adversarial`: per epoch, g_steps G steps, then d_steps D steps.
   - G step: sample a batch; a recurrent D scores every prefix y_1..y_t
     (`Discriminator.prefix_scores`), and the prefix earns r_t = 2 D(y_1..t) - 1 (the official
     code's reward, `scratch.reward: centred`; or D's logit, `logit`); each token's return is the
     discounted sum of the rewards from it on, R_t = sum_{s >= t} gamma^(s - t) r_s (gamma =
     `scratch.discount`, the paper's 0.23), less a baseline: by default the official code's one
     number, b <- decay * b + (1 - decay) * mean(R) over the batch's tokens, kept across G steps
     (`scratch.baseline: ewma`, decay 0.08; under torchrun the mean of every rank's tokens), or the
     batch mean of R_t at each step t (`step_mean`) (`seqgan.rl.returns`); G takes the REINFORCE
     step -mean_{b,t} log G(y_t | y_<t) * A_t.
   - D step: a batch of real sequences against a fresh batch of samples, every prefix classified
     (binary cross-entropy of each step's logit, padding left out), plus the official code's L2 on
     every weight of D (`scratch.d_l2`, TF's l2_loss: d_l2 * sum(w^2) / 2).

The paper's regularisers and settings, as its code (deepmind-research/scratchgan) sets them: large
batches (`adversarial.batch_size`, its 512 in the configs here), D's L2 (`scratch.d_l2`, 1e-6),
dropout on D's embedding table (`discriminator.embedding_dropout`, 0.1), the fixed position signal
appended to D's inputs (`discriminator.position_dim`, 8 cosine waves), Adam's beta1 0.5 for G and D
(`scratch.adam_beta1`); on text, pre-trained word vectors such as its GloVe (`data.word_vectors`:
each token embedded as [its vector, frozen; a trainable part] projected, in G and D). Left out:
layer normalisation in D's LSTM (which the code's TF 2 port drops as well), G's tied input and
output embeddings, and the code's order within a step (D's update before G's; here G's first, as
in every algorithm of this package). D must be
`discriminator.kind: rnn` with `bidirectional: false` (a prefix's score may not read the future)
and `rnn_pooling: last`. Unconditional runs only.
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
from seqgan.models.generator import Generator
from seqgan.rl.losses import masked_mean, pg_loss
from seqgan.rl.returns import centred_rewards, discounted_returns, ewma_baseline, mean_baseline_advantages
from seqgan.runtime import to_device

REWARDS = ("centred", "logit")
BASELINES = ("ewma", "step_mean")


@dataclass
class ScratchConfig:
    """ScratchGAN's own settings (YAML section `scratch:`)."""

    discount: float = 0.23
    """gamma of the per-token returns R_t = sum_{s >= t} gamma^(s - t) r_s (the paper: 0.23)."""
    reward: str = "centred"
    """What prefix y_1..y_t earns: 'centred' (2 D(y_1..t) - 1, in (-1, 1): the paper's code) or 'logit'
    (D's logit of "real", unbounded)."""
    baseline: str = "ewma"
    """What is subtracted from R_t: 'ewma' (the paper's code: one number, decay * b + (1 - decay) * the
    batch's mean return, carried across G steps) or 'step_mean' (the batch mean of R_t at each step t)."""
    baseline_decay: float = 0.08
    """baseline=ewma: the weight of the previous baseline (the paper's code: 0.08)."""
    d_l2: float = 1e-6
    """L2 on every weight of D, d_l2 * sum(w^2) / 2 added to D's loss (the paper's code: 1e-6; 0: off).
    (discriminator.l2_reg, SeqGAN's penalty on D's output layer alone, is not used.)"""
    adam_beta1: float = 0.5
    """beta1 of G's and D's Adam (the paper's code: 0.5; PyTorch's default 0.9)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"scratch.discount={self.discount}: use a number in [0, 1]")
        if self.reward not in REWARDS:
            raise ConfigError(f"scratch.reward={self.reward!r}: use one of {', '.join(REWARDS)}")
        if self.baseline not in BASELINES:
            raise ConfigError(f"scratch.baseline={self.baseline!r}: use one of {', '.join(BASELINES)}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ConfigError(f"scratch.baseline_decay={self.baseline_decay}: use a number in [0, 1)")
        if not (math.isfinite(self.d_l2) and self.d_l2 >= 0):
            raise ConfigError(f"scratch.d_l2={self.d_l2}: use a number >= 0 (0: no L2 on D)")
        if not 0.0 <= self.adam_beta1 < 1.0:
            raise ConfigError(f"scratch.adam_beta1={self.adam_beta1}: use a number in [0, 1)")


@register
class Scratch(GAN):
    name = "scratch"
    summary = "ScratchGAN-style: no pre-training, dense per-prefix rewards of a recurrent D, discounted, mean baseline"
    Section = ScratchConfig
    uses = ("data", "generator", "discriminator", "adversarial", "eval", "checkpoint", "condition")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.add_gan_optimizers(betas=(ctx.cfg.algo.adam_beta1, 0.999))

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

    def discriminator_update(self) -> torch.Tensor:
        self.steps["d"] += 1
        return self.discriminator_step()

    def samples(self, rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.generator.eval()
        return self.generator.sample(rows, self.data.length, self.streams.sample, return_noise=True)

    def generator_step(self) -> dict[str, float | torch.Tensor]:
        """One REINFORCE step on a fresh batch with D's per-prefix verdicts as dense rewards. Its
        loss and mean reward stay on the device (read once per epoch, `read_logged`)."""
        a, s, g, d = self.cfg.adversarial, self.cfg.algo, self.generator, self.discriminator
        samples, noise = self.samples(a.batch_size // self.dist.world)  # (B, T)
        d.eval()
        with torch.no_grad():
            logits = d.prefix_scores(samples)  # (B, T): D's logit of "real" for y_1..y_t
        rewards = centred_rewards(logits) if s.reward == "centred" else logits
        mask = g.mask(samples)
        adv, baseline = self.advantages(discounted_returns(rewards, s.discount, mask), mask)
        g.train()
        loss = pg_loss(call(self.wrappers["generator"], Generator.log_probs, samples, noise=noise), adv, "none", mask)
        clipped_step(g.parameters(), self.optimizers["adversarial"].optimizer, loss, a.grad_clip)
        row = {"g_loss": loss.detach(), "mean_reward": masked_mean(rewards, mask)}
        return row if baseline is None else {**row, "baseline": baseline}

    def advantages(self, returns: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, float | None]:
        """returns R (B, T) -> (advantages (B, T), the EWMA baseline after this batch, or None for
        step_mean). The EWMA's mean runs over the tokens of every rank, so all ranks keep one number,
        which checkpoints hold (steps['scratch_baseline']): one host read per G step."""
        s = self.cfg.algo
        if s.baseline == "step_mean":
            return mean_baseline_advantages(returns, mask), None
        valid = torch.ones_like(returns) if mask is None else mask.to(returns.dtype)
        total, count = all_reduce_sum(torch.stack([(returns * valid).sum(), valid.sum()]).tolist(), self.dist, self.device)
        b = ewma_baseline(self.steps.get("scratch_baseline", 0.0), total / max(count, 1.0), s.baseline_decay)
        self.steps["scratch_baseline"] = b
        return returns - b, b

    def discriminator_step(self) -> torch.Tensor:
        """Every prefix of a real batch against every prefix of a fresh batch of samples. Returns the
        loss, a 0-d tensor left on the device (read once per epoch, `read_logged`)."""
        a, d, data = self.cfg.adversarial, self.discriminator, self.data
        idx = torch.randint(len(data.train), (a.batch_size,), generator=self.streams.shuffle)[self.dist.rows(a.batch_size)]
        real = data.train[to_device(idx, data.train.device)]
        fake, _ = self.samples(len(real))
        x = torch.cat([real, fake])  # (2B, T)
        target = (torch.arange(len(x), device=x.device) < len(real)).float()[:, None].expand(x.shape)  # real rows first
        d.train()
        logits = call(self.wrappers["discriminator"], type(d).prefix_scores, x)  # (2B, T)
        mask = self.generator.mask(x)
        loss = masked_mean(F.binary_cross_entropy_with_logits(logits, target, reduction="none"), mask)
        if self.cfg.algo.d_l2 > 0:  # the paper's code: TF's l2_loss on every weight of D
            loss = loss + self.cfg.algo.d_l2 * 0.5 * sum(p.pow(2).sum() for p in d.parameters())
        clipped_step(d.parameters(), self.optimizers["discriminator"].optimizer, loss, a.grad_clip)
        return loss.detach()
