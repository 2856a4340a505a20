"""LeakGAN (Guo, Lu, Cai, Zhang, Yu, Wang, AAAI 2018: "Long Text Generation via Adversarial
Training with Leaked Information").

What changes relative to SeqGAN (`seqgan.algorithms.seqgan`):
- G is hierarchical and reads D (`seqgan.models.leakgan_generator`): at every step D's CNN
  features of the prefix (the leaked information) feed a MANAGER LSTM that emits a goal; a WORKER
  LSTM's output matrix times the projected sum of the last c goals gives the next token's logits.
  D is SeqGAN's CNN D, trained as in SeqGAN (`seqgan.algorithms.gan`); G holds it.
- MLE (`mle_epoch`) trains the worker by maximum likelihood and the manager to point its goals at
  the feature changes f_{t+c} - f_t of real text (the official code's pre-training).
- D pre-training is interleaved with G's MLE as in the official code: after every
  `leakgan.pretrain_d_rounds` D rounds, `leakgan.pretrain_g_epochs` MLE epochs.
- The adversarial G step (`leakgan_step`): Monte Carlo rollouts by G itself (no delayed copy, as
  the official code) from every c-th prefix, scored by D; the bootstrapped rescaled activation of
  those rewards (ranks within the batch); the manager descends -Q cos(f_{t+c} - f_t, g_t), the
  worker its policy gradient on the intrinsic reward (1/c) sum cos(f_t - f_{t-i}, g_{t-i})
  (`seqgan.rl.leakgan`).
- Interleaved training: every `leakgan.interleave_every` adversarial epochs, G takes
  `leakgan.interleave_epochs` MLE epochs.

The adversarial schedule (g_steps G steps, then d_steps D rounds) and D's rounds are SeqGAN's.
Under torchrun each rank trains on its rows of every global batch (MLE) or samples its share of
the batch (adversarial G steps, each rank's rollouts and rank-based rescaling over its own rows),
and G's gradients are averaged over the ranks by hand (`distributed.average_gradients`): G holds
D, so G is not wrapped in DDP; D's rounds are every GAN's, through D's DDP wrapper.
Not built: conditions, the official code's temperature schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from seqgan.algorithms.base import Algorithm, Context, Logs, register
from seqgan.algorithms.build import OWN_GENERATORS, build_discriminator
from seqgan.algorithms.common import Streams
from seqgan.algorithms.gan import GAN
from seqgan.config import AdversarialConfig, ConfigError, DiscriminatorConfig, ExperimentConfig, GeneratorConfig, load_config
from seqgan.data.dataset import Data
from seqgan.distributed import SINGLE, Dist, all_reduce_sum, average_gradients, broadcast_, global_mean_scale
from seqgan.errors import NonFiniteLossError
from seqgan.models.discriminator import prob_real
from seqgan.models.leakgan_generator import LeakGANGenerator
from seqgan.rl.leakgan import intrinsic_rewards, manager_loss, rescaled_activation, worker_loss
from seqgan.rl.losses import masked_mean
from seqgan.rl.rollout import rollout_rewards


@dataclass
class LeakGANConfig:
    """LeakGAN's own settings (YAML section `leakgan:`). The worker's sizes are generator.embed_dim
    and generator.hidden_dim; the goals have D's feature size, sum(discriminator.num_filters)
    (the official code's goal_out_size), since the manager's loss compares them with D's features."""

    horizon: int = 4
    """c: goals summed over the last c steps, rewards every c steps, feature changes over c steps (the paper: 4)."""
    goal_size: int = 16
    """k: the size of the worker's goal embedding w_t (the paper: 16)."""
    manager_hidden: int = 32
    """The manager LSTM's hidden size (the official code: the generator's, 32)."""
    delta: float = 12.0
    """delta of the rescaled activation sigma(delta * (0.5 - rank / B)) (the paper: 12)."""
    pretrain_d_rounds: int = 5
    """D pre-training rounds between two blocks of G's MLE epochs (the official code: 5)."""
    pretrain_g_epochs: int = 8
    """G's MLE epochs after every pretrain_d_rounds D rounds (the official code: 80 / 10 = 8); 0: none."""
    interleave_every: int = 15
    """Adversarial epochs between two blocks of interleaved MLE (the paper, as we read it: 15); 0: none."""
    interleave_epochs: int = 10
    """G's MLE epochs in each interleaved block (the paper, as we read it: 10)."""

    def __post_init__(self) -> None:
        for name in ("horizon", "goal_size", "manager_hidden", "pretrain_d_rounds", "interleave_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"leakgan.{name} must be >= 1")
        for name in ("pretrain_g_epochs", "interleave_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"leakgan.{name} must be >= 0 (0 turns it off)")
        if not self.delta > 0:
            raise ConfigError(f"leakgan.delta must be > 0 (the paper: 12), got {self.delta}")


def make_leakgan_generator(cfg: ExperimentConfig, data: Data) -> LeakGANGenerator:
    """G with its own D (the run's discriminator section): what the algorithm trains and what a
    reopened run samples from."""
    g, s = cfg.generator, cfg.algo
    d = build_discriminator(cfg.discriminator, data.vocab_size)
    return LeakGANGenerator(
        d,
        data.vocab_size,
        data.length,
        embed_dim=g.embed_dim,
        hidden_dim=g.hidden_dim,
        manager_hidden=s.manager_hidden,
        goal_size=s.goal_size,
        horizon=s.horizon,
        start_token=data.start_token,
        init_std=g.init_std,
        eos_token=data.eos_token,
        pad_token=data.pad_token,
    )


OWN_GENERATORS["leakgan"] = make_leakgan_generator

GENERATOR_KEYS = ("embed_dim", "hidden_dim", "init_std")  # what LeakGAN reads of the generator section
NOT_ROLLOUT = ("reward", "rollout_stride", "rollout_update_rate", "baseline", "discount", "kl_weight")
D_KEYS = ("kind", "num_rep", "causal", "condition_judge")


def _check_init_from(spec: str) -> None:
    """pretrain.init_from must name a LeakGAN run: only its G has the manager, the worker and D."""
    config = Path(spec.rsplit("@", 1)[0] if "@" in spec and not Path(spec).is_dir() else spec) / "config.yaml"
    if spec and config.is_file() and (other := load_config(config).algorithm) != "leakgan":
        raise ConfigError(
            f"pretrain.init_from={spec}: that run is algorithm={other}; a LeakGAN G (manager, worker and the D it "
            "reads) starts only from another LeakGAN run: remove pretrain.init_from, or name a leakgan run"
        )


def _changed(section, defaults, keys) -> list[str]:
    return [k for k in keys if getattr(section, k) != getattr(defaults, k)]


@register
class LeakGAN(GAN):
    name = "leakgan"
    summary = "Guo et al. 2018: a manager-worker G that reads D's features (leaked), rescaled rollout rewards"
    Section = LeakGANConfig
    uses = ("data", "generator", "discriminator", "pretrain", "d_pretrain", "adversarial", "eval", "checkpoint")

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        other = [k for k in GeneratorConfig.__dataclass_fields__ if k not in GENERATOR_KEYS]
        g = _changed(cfg.generator, GeneratorConfig(), other)
        if g:
            raise ConfigError(
                f"generator.{', generator.'.join(g)}: algorithm=leakgan has its own manager-worker G (generator.embed_dim, hidden_dim and "
                "init_std size the worker; the rest is in the leakgan section); remove them"
            )
        d = _changed(cfg.discriminator, DiscriminatorConfig(), D_KEYS)
        if d:
            raise ConfigError(
                f"discriminator.{', discriminator.'.join(d)}: algorithm=leakgan leaks the features of the paper's CNN D "
                "(kind=cnn, num_rep=1, causal=false); remove them"
            )
        a = _changed(cfg.adversarial, AdversarialConfig(), NOT_ROLLOUT)
        if a:
            raise ConfigError(
                f"adversarial.{', adversarial.'.join(a)}: algorithm=leakgan rolls out every leakgan.horizon tokens with G "
                "itself and rescales the rewards by rank; remove them"
            )
        if cfg.algo.horizon >= cfg.data.length:
            raise ConfigError(f"leakgan.horizon={cfg.algo.horizon} must be below the sequence length ({cfg.data.length})")

    def __init__(self, ctx: Context) -> None:
        _check_init_from(ctx.cfg.pretrain.init_from)
        Algorithm.__init__(self, ctx)  # not GAN's: D is the one G holds and reads
        cfg, g = ctx.cfg, self.generator
        self.discriminator = g.discriminator
        broadcast_(list(g.parameters()) + list(g.buffers()), ctx.dist)  # G (and the D it reads) as rank 0's
        own = g.worker_parameters() + g.manager_parameters()  # never D's: G's losses do not train D
        self.add_optimizer("mle", own, cfg.pretrain.lr, "pretrain.lr")
        self.add_optimizer("adversarial", own, cfg.adversarial.g_lr, "adversarial.g_lr")
        self.add_optimizer("discriminator", self.discriminator.parameters(), cfg.discriminator.lr, "discriminator.lr")
        self.steps["leakgan_d_rounds"] = 0
        self.steps["leakgan_epochs"] = 0

    def trained_models(self) -> dict[str, torch.nn.Module]:
        """D alone gets a DDP wrapper: G holds D, so G's gradients are averaged by hand."""
        return {"discriminator": self.discriminator}

    def unit_steps(self, phase: str) -> int:
        steps = super().unit_steps(phase)
        mle = len(self.data.train) // self.cfg.pretrain.batch_size
        s = self.cfg.algo
        if phase == "d_pretrain":
            return steps + mle * s.pretrain_g_epochs // s.pretrain_d_rounds
        if phase == "adversarial" and s.interleave_every:
            return steps + mle * s.interleave_epochs // s.interleave_every
        return steps

    # ---------------------------------------------------------------- ALGO LOGIC

    def mle_epoch(self) -> Logs:
        p = self.cfg.pretrain
        nll, goal = leakgan_mle_epoch(
            self.generator,
            self.optimizers["mle"].optimizer,
            self.data.train,
            p.batch_size,
            p.grad_clip,
            self.streams,
            dist=self.dist,
        )
        self.steps["g"] += len(self.data.train) // p.batch_size
        return {"mle_loss": [nll], "mle_manager_loss": [goal]}

    def _mle_block(self, epochs: int, logs: Logs) -> None:
        for _ in range(epochs):
            for key, values in self.mle_epoch().items():
                logs.setdefault(key, []).extend(values)

    def d_pretrain_step(self) -> Logs:
        logs = super().d_pretrain_step()
        self.steps["leakgan_d_rounds"] += 1
        if self.steps["leakgan_d_rounds"] % self.cfg.algo.pretrain_d_rounds == 0:
            self._mle_block(self.cfg.algo.pretrain_g_epochs, logs)
        return logs

    def adversarial_epoch(self) -> Logs:
        logs = super().adversarial_epoch()
        self.steps["leakgan_epochs"] += 1
        every = self.cfg.algo.interleave_every
        if every and self.steps["leakgan_epochs"] % every == 0:
            self._mle_block(self.cfg.algo.interleave_epochs, logs)
        return logs

    def generator_step(self) -> dict[str, float]:
        return leakgan_step(
            self.generator, self.optimizers["adversarial"].optimizer, self.cfg.adversarial, self.cfg.algo, self.streams, self.dist
        )


def _clipped_step(
    g: LeakGANGenerator, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None, dist: Dist = SINGLE
) -> None:
    """Backward, average the gradients over the ranks, clip the worker's and the manager's each to
    `clip` (the official code clips its two updates apart), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(g.worker_parameters() + g.manager_parameters(), dist)
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(g.worker_parameters(), clip)
        torch.nn.utils.clip_grad_norm_(g.manager_parameters(), clip)
    optimizer.step()


def mle_losses(g: LeakGANGenerator, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pre-training losses on real sequences batch (B, T): the worker's NLL per token, and the
    manager's -mean cos(f_{t+c} - f_t, g_t) (`manager_loss` with Q = 1)."""
    mixed, features, goals = g.teacher_forced(batch)
    mask = g.mask(batch)
    nll = -masked_mean(g.mixed_log_probs(mixed, batch), mask)
    return nll, manager_loss(features, goals, torch.ones_like(batch, dtype=features.dtype), g.horizon, mask)


def leakgan_mle_epoch(
    g: LeakGANGenerator,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float | None,
    streams: Streams,
    *,
    dist: Dist = SINGLE,
) -> tuple[float, float]:
    """One shuffled pass over data (R, T) (the last partial batch dropped): the worker by MLE, the
    manager towards the real feature changes. Returns the mean (NLL, manager loss). Under torchrun
    every rank draws the same order and trains on its rows of each batch, the NLL scaled so that the
    averaged gradient is the global batch's mean (the manager's loss: the mean of the ranks' means)."""
    g.train()
    perm = torch.randperm(len(data), generator=streams.shuffle).to(data.device)
    total, steps = torch.zeros(2, dtype=torch.float64, device=data.device), 0
    for i in range(0, len(data) - batch_size + 1, batch_size):
        batch = data[perm[i : i + batch_size]][dist.rows(batch_size)]
        nll, goal = mle_losses(g, batch)
        if dist.parallel:
            mask = g.mask(batch)
            nll = nll * global_mean_scale(batch.numel() if mask is None else float(mask.sum()), dist, batch.device)
        _clipped_step(g, optimizer, nll + goal, grad_clip, dist)
        total += torch.stack([nll.detach(), goal.detach()])
        steps += 1
    nll_mean, goal_mean = (t / dist.world for t in all_reduce_sum((total / max(steps, 1)).tolist(), dist, data.device))
    if not math.isfinite(nll_mean + goal_mean):
        raise NonFiniteLossError(f"the LeakGAN MLE losses are {nll_mean}, {goal_mean}")
    return nll_mean, goal_mean


def leakgan_step(
    g: LeakGANGenerator,
    optimizer: torch.optim.Optimizer,
    a: AdversarialConfig,
    s: LeakGANConfig,
    streams: Streams,
    dist: Dist = SINGLE,
) -> dict[str, float]:
    """One adversarial G step: sample a batch, reward every c-th prefix by a.rollout_num rollouts of
    G scored by D (eval mode), rescale the rewards by rank (`rescaled_activation`), then descend the
    manager's and the worker's losses together (they train disjoint parameters). Returns the
    values to log: the losses, D's mean raw reward and the worker's mean intrinsic reward, averaged
    over the ranks (each samples batch_size / world rows and ranks the rewards among them)."""
    d = g.discriminator
    g.eval()
    d.eval()
    samples = g.sample(a.batch_size // dist.world, g.max_len, streams.sample)  # (B, T)

    chunk = a.rollout_rows(samples.device.type)

    def score(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return prob_real(d, x, chunk)

    q = rollout_rewards(g, score, samples, a.rollout_num, streams.sample, chunk_rows=chunk, stride=s.horizon)  # (B, T)
    q_goal = rescaled_activation(q, s.delta)[:, s.horizon - 1 :]  # (B, T-c+1): [t] the value of y_1..y_{t+c}
    g.train()
    mixed, features, goals = g.teacher_forced(samples)
    mask = g.mask(samples)
    m_loss = manager_loss(features, goals, q_goal, s.horizon, mask)
    r_int = intrinsic_rewards(features, goals, s.horizon)  # (B, T)
    w_loss = worker_loss(g.mixed_log_probs(mixed, samples), r_int, mask)
    loss = m_loss + w_loss
    values = torch.stack([loss.detach(), m_loss.detach(), w_loss.detach(), q.mean(), masked_mean(r_int, mask)]).tolist()
    if not math.isfinite(values[0]):
        raise NonFiniteLossError(f"the LeakGAN loss is {values[0]}")
    _clipped_step(g, optimizer, loss, a.grad_clip, dist)
    names = ("g_loss", "manager_loss", "worker_loss", "mean_reward", "intrinsic_reward")
    return dict(zip(names, (v / dist.world for v in all_reduce_sum(values, dist, samples.device)), strict=True))
