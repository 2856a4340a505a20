"""MaliGAN (Che, Li, Zhang, Hjelm, Li, Song, Bengio, 2017: "Maximum-Likelihood Augmented Discrete
Generative Adversarial Networks"), Algorithm 2: sequential MaliGAN with mixed MLE training.

What changes relative to SeqGAN (`seqgan.algorithms.seqgan`): only G's adversarial update
(`generator_step`). D, its pre-training, its rounds and the epoch's schedule are SeqGAN's
(`seqgan.algorithms.gan`). G is not trained by policy gradient on Monte Carlo
rollouts: it takes an MLE-like step on its own samples, each weighted by D's odds
r_D(y) = D(y) / (1 - D(y)), normalised over the samples that share a source, minus a baseline
(`seqgan.rl.maligan`). No rollouts, no rollout policy.

The mixed MLE / sampling schedule (`maligan.mixed`, on by default): each G step picks
batch_size / m real sequences, keeps the first N tokens of each (teacher-forced: their MLE
gradient), and samples m continuations of the rest from G; the m continuations of one prefix are
a group whose weights are normalised together. N starts at the sequence length and falls by K
(`maligan.mle_step`) every `maligan.mle_every` adversarial epochs, down to 0, after which every
step is Algorithm 1 on groups of m free samples. With mixed off N = 0 throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from seqgan.algorithms.base import Context, Logs, register
from seqgan.algorithms.common import Streams, clipped_step
from seqgan.algorithms.gan import GAN
from seqgan.algorithms.reinforce import ROLLOUT_SETTINGS
from seqgan.config import AdversarialConfig, ConfigError, ExperimentConfig
from seqgan.distributed import SINGLE, Dist, all_reduce_sum, call, global_mean_scale, replicate
from seqgan.errors import NonFiniteLossError
from seqgan.models.condition import pick_rows
from seqgan.models.discriminator import Discriminator, prob_real
from seqgan.models.generator import Generator
from seqgan.models.sampling import sample_logits
from seqgan.rl.maligan import BASELINES, maligan_advantages, maligan_loss, mixed_coefficients, mle_tokens


@dataclass
class MaliGANConfig:
    """MaliGAN's own settings (YAML section `maligan:`); the loop's sizes are adversarial.*."""

    samples_per_prefix: int = 8
    """m: samples per real prefix, normalised together (must divide adversarial.batch_size). The
    paper's Algorithm 2 has m but no value we could find for it; 8 is our choice."""
    mixed: bool = True
    """Algorithm 2's mixed MLE / sampling schedule: the first N tokens of each group are a real
    prefix trained by MLE; false: N = 0 (Algorithm 1 on groups of m free samples)."""
    mle_step: int = 1
    """K: N starts at the sequence length and falls by K before every mle_every epochs' first G step."""
    mle_every: int = 1
    """Adversarial epochs between decreases of N."""
    baseline: str = "mean"
    """b: 'mean' (1/m, so each group's weights sum to 0; Texygen's and TextGAN-PyTorch's) or 'none' (0)."""

    def __post_init__(self) -> None:
        for name in ("samples_per_prefix", "mle_step", "mle_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"maligan.{name} must be >= 1")
        if self.baseline not in BASELINES:
            raise ConfigError(f"maligan.baseline={self.baseline!r}: use 'mean' or 'none'")
        if not self.mixed and (self.mle_step, self.mle_every) != (1, 1):
            raise ConfigError("maligan.mle_step and mle_every set the mixed schedule: remove them or set maligan.mixed=true")


@register
class MaliGAN(GAN):
    name = "maligan"
    summary = (
        "Che et al. 2017: G by MLE-like steps on its samples weighted by D's normalised odds, mixed with MLE on real prefixes"
    )
    Section = MaliGANConfig
    uses = ("data", "generator", "discriminator", "pretrain", "d_pretrain", "adversarial", "eval", "checkpoint")

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        a, m = cfg.adversarial, cfg.algo
        changed = [
            f"adversarial.{k}" for k in ROLLOUT_SETTINGS if getattr(a, k) != AdversarialConfig.__dataclass_fields__[k].default
        ]
        if changed:
            raise ConfigError(
                f"{', '.join(changed)}: algorithm=maligan has no rollouts or policy-gradient options (its G step weighs "
                "whole samples by D's odds); remove them"
            )
        if a.batch_size % m.samples_per_prefix:
            raise ConfigError(
                f"adversarial.batch_size={a.batch_size} must be a multiple of maligan.samples_per_prefix={m.samples_per_prefix} "
                "(each G step draws batch_size / m groups of m samples)"
            )
        if cfg.generator.noise_dim != 0:
            raise ConfigError("algorithm=maligan weighs p_G(y) of whole samples: it needs generator.noise_dim=0")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        cfg = ctx.cfg
        per_rank, m = cfg.adversarial.batch_size // ctx.dist.world, cfg.algo.samples_per_prefix
        if per_rank % m:
            raise ConfigError(
                f"adversarial.batch_size={cfg.adversarial.batch_size} gives each of the {ctx.dist.world} processes "
                f"{per_rank} samples, not a multiple of maligan.samples_per_prefix={m}: every process draws whole groups"
            )
        self.add_gan_optimizers()
        self.steps["maligan_epochs"] = 0  # adversarial epochs so far: the schedule of N (kept in checkpoints)

    # ---------------------------------------------------------------- ALGO LOGIC

    def prefix_tokens(self) -> int:
        """N for the coming adversarial epoch (0 without the mixed schedule)."""
        s = self.cfg.algo
        if not s.mixed:
            return 0
        return mle_tokens(self.data.length, self.steps.get("maligan_epochs", 0), s.mle_step, s.mle_every)

    def generator_step(self) -> dict[str, float]:
        prefix = self.prefix_tokens()
        loss, mean_d = maligan_step(
            self.generator,
            self.discriminator,
            self.optimizers["adversarial"].optimizer,
            self.data.train,
            self.cfg.adversarial,
            self.cfg.algo,
            prefix_len=prefix,
            streams=self.streams,
            dist=self.dist,
            model=self.wrappers["generator"],
        )
        return {"g_loss": loss, "mean_d": mean_d, "mle_tokens": float(prefix)}

    def adversarial_epoch(self) -> Logs:
        logs = super().adversarial_epoch()
        self.steps["maligan_epochs"] = self.steps.get("maligan_epochs", 0) + 1  # N moves between epochs
        return logs


def maligan_step(
    generator: Generator,
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    a: AdversarialConfig,
    s: MaliGANConfig,
    *,
    prefix_len: int,
    streams: Streams,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
) -> tuple[float, float]:
    """One G step of Algorithm 2: batch_size / m real sequences `real` (R, T) give their first
    `prefix_len` tokens (N), G samples m continuations of each, D scores them (eval mode), and G
    descends `maligan_loss`: MLE on the prefixes, the samples' log-likelihood weighted by their
    group-normalised odds minus the baseline. Returns (loss, mean D of the samples).

    Under torchrun each rank draws its own groups (batch_size / world rows); the loss is scaled to
    its share of the global mean, and DDP averages the gradients."""
    g, m = generator, s.samples_per_prefix
    model = model or replicate(g, dist)
    g.eval()
    groups = a.batch_size // dist.world // m
    prefixes = pick_rows(real, groups, streams.sample) if prefix_len > 0 else real.new_zeros(groups, real.shape[1])
    samples = continue_prefixes(g, prefixes, prefix_len, m, streams.sample)  # (groups * m, T)
    discriminator.eval()
    d_prob = prob_real(discriminator, samples, len(samples))  # (B,)
    coef = mixed_coefficients(maligan_advantages(d_prob, m, s.baseline), prefix_len, samples.shape[1], m)  # (B, T)
    g.train()
    mask = g.mask(samples)
    loss = maligan_loss(call(model, Generator.log_probs, samples), coef, m, mask)
    if dist.parallel:
        loss = loss * global_mean_scale(samples.numel() if mask is None else float(mask.sum()), dist, samples.device)
    values = torch.stack([loss.detach(), d_prob.mean()]).tolist()  # one host read per G step
    if not math.isfinite(values[0]):
        raise NonFiniteLossError(f"the MaliGAN loss is {values[0]}")
    clipped_step(g.parameters(), optimizer, loss, a.grad_clip)
    loss_sum, d_sum = all_reduce_sum(values, dist, samples.device)
    return loss_sum / dist.world, d_sum / dist.world


@torch.no_grad()
def continue_prefixes(
    generator: Generator, prefixes: torch.Tensor, prefix_len: int, m: int, rng: torch.Generator
) -> torch.Tensor:
    """m samples per row of prefixes (n, T): rows [k m, (k + 1) m) of the result (n m, T) keep row
    k's first prefix_len tokens and continue them with tokens drawn from G (in its current mode).
    With an end token a row whose prefix has ended stays padded; a continuation stops at the end token."""
    g = generator
    rows = prefixes.repeat_interleave(m, dim=0)  # (n m, T): group k is rows k m .. k m + m - 1
    if prefix_len >= rows.shape[1]:
        return rows
    start = torch.full_like(rows[:, 0], g.start_token)
    logits, state = g.step(start, g.initial_state(None, len(rows)))
    for t in range(prefix_len):  # teacher-force the real prefix
        logits, state = g.step(rows[:, t], state)
    done = None
    if g.eos_token is not None and prefix_len > 0:
        done = (rows[:, :prefix_len] == g.eos_token).any(dim=1)
    for t in range(prefix_len, rows.shape[1]):
        token, done = g.finish(sample_logits(logits, rng, 1.0, inplace=True), done)
        rows[:, t] = token
        if t + 1 < rows.shape[1]:
            logits, state = g.step(token, state)
    return rows
