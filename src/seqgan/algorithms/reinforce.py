"""REINFORCE with a sequence-level reward (Williams 1992): the simplest adversarial text generator,
SeqGAN without its Monte Carlo rollouts.

G samples a batch; D scores each whole sequence once, D(Y) = P(real | Y); every token of Y gets
that score as its reward (no credit assignment between tokens), less the batch's mean score with
`reinforce.baseline: mean`; G takes the policy-gradient step -mean_{b,t} log G(y_t | Y_<t) * A(Y).
D is pre-trained and trained between G steps exactly as in SeqGAN (`seqgan.algorithms.gan`).

Compared with SeqGAN it costs one D pass per batch instead of rollout_num * T, and it rewards a
good token in a bad sequence as bad: the variance the rollouts exist to reduce.
Settings: the shared `adversarial` section (epochs, g_steps, batch_size, g_lr, grad_clip, the D
schedule) without its rollout settings, and `reinforce.baseline`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqgan.algorithms.base import Context, register
from seqgan.algorithms.common import Streams, clipped_step
from seqgan.algorithms.gan import GAN
from seqgan.config import AdversarialConfig, ConfigError, ExperimentConfig
from seqgan.distributed import SINGLE, Dist, all_reduce_, call, global_mean_scale, replicate
from seqgan.models.condition import pick_rows
from seqgan.models.discriminator import Discriminator, prob_real
from seqgan.models.generator import Generator
from seqgan.rl.losses import pg_loss

ROLLOUT_SETTINGS = (
    "rollout_num",
    "rollout_stride",
    "rollout_update_rate",
    "rollout_chunk",
    "reward",
    "baseline",
    "discount",
    "kl_weight",
)
"""adversarial.* settings of SeqGAN's rollouts and per-token rewards, which REINFORCE has not."""


@dataclass
class ReinforceConfig:
    """REINFORCE's own settings (YAML section `reinforce:`)."""

    baseline: str = "none"
    """'none': every token's reward is D(Y); 'mean': D(Y) less the batch's mean score (an unbiased,
    lower-variance gradient)."""

    def __post_init__(self) -> None:
        if self.baseline not in ("none", "mean"):
            raise ConfigError(f"reinforce.baseline={self.baseline!r}: use 'none' or 'mean'")


@register
class Reinforce(GAN):
    name = "reinforce"
    summary = "G by policy gradient, every token rewarded with D's score of the whole sequence (no rollouts)"
    Section = ReinforceConfig

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.add_gan_optimizers()

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        a = cfg.adversarial
        for name in ROLLOUT_SETTINGS:
            if getattr(a, name) != AdversarialConfig.__dataclass_fields__[name].default:
                raise ConfigError(
                    f"adversarial.{name} is a setting of SeqGAN's rollouts; algorithm=reinforce has none: remove it "
                    "(the baseline is reinforce.baseline)"
                )

    # ---------------------------------------------------------------- ALGO LOGIC

    def generator_step(self) -> dict[str, torch.Tensor]:
        loss, reward = reinforce_step(
            self.generator,
            self.discriminator,
            self.optimizers["adversarial"].optimizer,
            self.cfg.adversarial,
            baseline=self.cfg.algo.baseline,
            seq_len=self.data.length,
            streams=self.streams,
            dist=self.dist,
            model=self.wrappers["generator"],
            cond_pool=self.data.cond_train,
        )
        return {"g_loss": loss, "mean_reward": reward}


def sequence_advantages(
    scores: torch.Tensor, seq_len: int, baseline: str = "none", mean: torch.Tensor | None = None
) -> torch.Tensor:
    """Every token's weight in the policy gradient: scores (B,) -> (B, T), row b all D(Y_b), less the
    batch mean of the scores with baseline='mean' (`mean`: the global batch's, under torchrun)."""
    if baseline == "mean":
        scores = scores - (scores.mean() if mean is None else mean)
    return scores.unsqueeze(1).expand(-1, seq_len)


def reinforce_step(
    generator: Generator,
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    a: AdversarialConfig,
    *,
    baseline: str,
    seq_len: int,
    streams: Streams,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
    cond_pool: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One G step: sample a.batch_size sequences (for conditions drawn from `cond_pool`, (R, ...)),
    score each once with D (eval mode), weight every token's log-probability by its sequence's
    score (`sequence_advantages`), clip and step. Returns (loss, mean score), 0-d tensors of this
    rank left on the device (`read_logged` reads and averages them once per epoch). Under torchrun
    each rank samples its share; the baseline and the loss's mean are the global batch's."""
    model = model or replicate(generator, dist)
    generator.eval()
    rows = a.batch_size // dist.world
    cond = pick_rows(cond_pool, rows, streams.sample)  # (B, ...) or None
    samples, noise = generator.sample(rows, seq_len, streams.sample, return_noise=True, cond=cond)  # (B, T)
    discriminator.eval()
    scores = prob_real(discriminator, samples, len(samples), cond)  # (B,)
    mean = None
    if dist.parallel and baseline == "mean":
        sums = all_reduce_(torch.stack([scores.sum(), torch.tensor(float(len(scores)), device=scores.device)]), dist)
        mean = sums[0] / sums[1]
    adv = sequence_advantages(scores, samples.shape[1], baseline, mean)  # (B, T)
    generator.train()
    mask = generator.mask(samples)
    loss = pg_loss(call(model, Generator.log_probs, samples, noise=noise, cond=cond), adv, "none", mask)
    if dist.parallel:
        loss = loss * global_mean_scale(samples.numel() if mask is None else float(mask.sum()), dist, samples.device)
    clipped_step(generator.parameters(), optimizer, loss, a.grad_clip)
    return loss.detach(), scores.mean()
