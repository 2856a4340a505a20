"""GSGAN (Kusner and Hernandez-Lobato 2016): G trained by backpropagation through Gumbel-softmax
samples, no policy gradient.

1. `mle`: G pre-trained by maximum likelihood, as in SeqGAN.
2. no D pre-training (the `d_pretrain` phase is empty).
3. `adversarial`: per epoch, g_steps G steps, then d_steps D steps. A G step samples a batch with
   the Gumbel-max trick and hands D the relaxed one-hots softmax(beta * (o_t + g_t)) of every
   step (`seqgan.rl.relaxed.relaxed_sample`); D's gradient flows through them into G's logits,
   and G descends the GAN loss directly. A D step scores a batch of real sequences (one-hots)
   against a fresh batch of relaxed samples and descends D's side of the same loss.

The inverse temperature beta is annealed from 1 to `gsgan.beta_max` over the adversarial G steps
(`seqgan.rl.relaxed.inverse_temperature`), reaching it at the last one. The loss is the
standard GAN's (`gsgan.loss`); `seqgan.algorithms.relgan` is this loop with RelGAN's choices.

Settings: the shared `adversarial` section's epochs, g_steps, d_steps, batch_size, g_lr,
grad_clip, train_g, train_d (not its rollout or negative-sampling settings), D's lr and l2_reg,
and the section `gsgan:`. Unconditional runs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from seqgan.algorithms.base import Context, register
from seqgan.algorithms.common import clipped_step
from seqgan.algorithms.gan import GAN
from seqgan.config import AdversarialConfig, ConfigError, DiscriminatorConfig, ExperimentConfig
from seqgan.distributed import call
from seqgan.models.discriminator import Discriminator
from seqgan.rl.relaxed import GAN_LOSSES, RELAXATIONS, SCHEDULES, gan_losses, inverse_temperature, relaxed_sample
from seqgan.runtime import to_device

UNUSED_ADVERSARIAL = (
    "d_epochs",
    "num_negatives",
    "rollout_num",
    "rollout_update_rate",
    "rollout_chunk",
    "baseline",
    "discount",
    "kl_weight",
)
"""adversarial.* settings of SeqGAN's rollouts and negative sampling, which a relaxed GAN has not."""
UNUSED_DISCRIMINATOR = ("batch_size", "label_smoothing")
"""discriminator.* settings of SeqGAN's D rounds (a relaxed GAN's D step reads adversarial.batch_size of each)."""


@dataclass
class GSGANConfig:
    """GSGAN's own settings (YAML section `gsgan:`)."""

    loss: str = "standard"
    """'standard' (the GAN of Goodfellow et al., G's non-saturating form) or 'rsgan' (relativistic standard GAN)."""
    beta_max: float = 100.0
    """The inverse temperature beta of softmax(beta * (logits + gumbel)) at the last adversarial G step (>= 1)."""
    schedule: str = "exp"
    """How beta rises from 1 to beta_max over the adversarial G steps: 'no' (beta_max throughout), 'lin',
    'exp', 'log', 'sigmoid', 'quad', 'sqrt' (RelGAN's schedules, reaching beta_max at the last step)."""
    relaxation: str = "soft"
    """What D reads of a sample: 'soft' (the relaxed one-hot), 'straight_through' (the hard one-hot
    forward, the soft gradient backward) or 'hard' (the one-hot: no gradient reaches G; a control)."""

    def __post_init__(self) -> None:
        name = type(self).__name__.removesuffix("Config").lower()
        if self.loss not in GAN_LOSSES:
            raise ConfigError(f"{name}.loss={self.loss!r}: use one of {', '.join(GAN_LOSSES)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{name}.schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.relaxation not in RELAXATIONS:
            raise ConfigError(f"{name}.relaxation={self.relaxation!r}: use one of {', '.join(RELAXATIONS)}")
        if not (math.isfinite(self.beta_max) and self.beta_max >= 1.0):
            raise ConfigError(f"{name}.beta_max must be a number >= 1 (the inverse temperature), got {self.beta_max}")


def check_relaxed_config(cfg: ExperimentConfig) -> None:
    """What a Gumbel-softmax GAN cannot honour: rollout and negative-sampling settings, a
    conditional run, D settings of SeqGAN's D rounds."""
    a, d = cfg.adversarial, cfg.discriminator
    for name in UNUSED_ADVERSARIAL:
        if getattr(a, name) != AdversarialConfig.__dataclass_fields__[name].default:
            raise ConfigError(
                f"adversarial.{name} is a setting of SeqGAN's rollouts or D rounds; algorithm={cfg.algorithm} trains G "
                "through relaxed samples and D on one batch per step (adversarial.batch_size): remove it"
            )
    for name in UNUSED_DISCRIMINATOR:
        if getattr(d, name) != DiscriminatorConfig.__dataclass_fields__[name].default:
            raise ConfigError(
                f"discriminator.{name} applies to SeqGAN's D rounds; algorithm={cfg.algorithm}'s D step reads "
                "adversarial.batch_size real and as many generated sequences: remove it"
            )
    if cfg.condition.kind != "none":
        raise ConfigError(f"algorithm={cfg.algorithm} trains unconditional generators only: remove condition.kind")


@register
class GSGAN(GAN):
    name = "gsgan"
    summary = "G by backpropagation through Gumbel-softmax samples scored by D (no policy gradient)"
    Section = GSGANConfig
    uses = ("data", "generator", "discriminator", "pretrain", "adversarial", "eval", "checkpoint", "condition")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.add_gan_optimizers()

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        check_relaxed_config(cfg)

    def epochs(self, phase: str) -> int:
        return 0 if phase == "d_pretrain" else super().epochs(phase)

    def beta(self) -> float:
        """The inverse temperature of the next G step: its place among the phase's G steps (kept in
        checkpoints as steps['adversarial_g'], so a resumed run continues the schedule)."""
        a, s = self.cfg.adversarial, self.cfg.algo
        return inverse_temperature(s.schedule, s.beta_max, self.steps.get("adversarial_g", 0), a.epochs * a.g_steps)

    # ---------------------------------------------------------------- ALGO LOGIC

    def discriminator_update(self) -> torch.Tensor:
        self.steps["d"] += 1
        return self.discriminator_step()

    def real_one_hots(self) -> torch.Tensor:
        """This rank's rows of a batch of real sequences drawn with replacement, as one-hots (B, T, V)."""
        a, data = self.cfg.adversarial, self.data
        idx = torch.randint(len(data.train), (a.batch_size,), generator=self.streams.shuffle)[self.dist.rows(a.batch_size)]
        return F.one_hot(data.train[to_device(idx, data.train.device)], data.vocab_size).float()

    def scores(self, real: torch.Tensor, fake: torch.Tensor, wrapped: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """D's logits of "real" for real (B, T, V) and generated (B, T, V) rows, in one pass of D
        (through its DDP wrapper when D takes the step: `wrapped`): (B * K,) each, K per sequence
        for a D with K representations, real row b facing generated row b in the relativistic loss."""
        both = torch.cat([real, fake])
        d = self.discriminator
        scores = call(self.wrappers["discriminator"], Discriminator.soft_scores, both) if wrapped else d.soft_scores(both)
        return scores[: len(real)].reshape(-1), scores[len(real) :].reshape(-1)

    def generator_step(self) -> dict[str, float | torch.Tensor]:
        """One G step: relaxed samples through D, G's side of the GAN loss, backpropagated into G.
        Its loss stays on the device (read once per epoch, `read_logged`)."""
        a, s, g, d = self.cfg.adversarial, self.cfg.algo, self.generator, self.discriminator
        beta = self.beta()
        real = self.real_one_hots()
        g.train()
        d.train()
        _, fake = call(
            self.wrappers["generator"],
            relaxed_sample,
            len(real),
            self.data.length,
            beta,
            self.streams.sample,
            relaxation=s.relaxation,
        )
        real_score, fake_score = self.scores(real, fake, wrapped=False)
        _, g_loss = gan_losses(real_score.detach(), fake_score, s.loss)
        clipped_step(g.parameters(), self.optimizers["adversarial"].optimizer, g_loss, a.grad_clip)
        self.steps["adversarial_g"] = self.steps.get("adversarial_g", 0) + 1  # the schedule's place
        return {"g_loss": g_loss.detach(), "beta": beta}

    def discriminator_step(self) -> torch.Tensor:
        """One D step: a real batch against a fresh batch of relaxed samples, D's side of the GAN
        loss. Returns the loss, a 0-d tensor left on the device (read once per epoch)."""
        a, s, d = self.cfg.adversarial, self.cfg.algo, self.discriminator
        real = self.real_one_hots()
        self.generator.eval()
        with torch.no_grad():
            _, fake = relaxed_sample(
                self.generator, len(real), self.data.length, self.beta(), self.streams.sample, relaxation=s.relaxation
            )
        d.train()
        real_score, fake_score = self.scores(real, fake, wrapped=True)
        d_loss, _ = gan_losses(real_score, fake_score, s.loss)
        l2 = self.cfg.discriminator.l2_reg
        if l2 > 0:  # as SeqGAN's D: TF's l2_loss on the output layer
            d_loss = d_loss + d.output_l2(l2)
        clipped_step(d.parameters(), self.optimizers["discriminator"].optimizer, d_loss, a.grad_clip)
        return d_loss.detach()
