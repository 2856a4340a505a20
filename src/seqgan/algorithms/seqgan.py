"""SeqGAN (Yu, Zhang, Wang, Yu, AAAI 2017, Algorithm 1), with the schedule of the paper's code.

1. `mle`: pre-train G by maximum likelihood on the real data.
2. `d_pretrain`: pre-train D on real data against fresh samples of G (`common.discriminator_round`).
3. `adversarial`: per epoch, g-steps policy-gradient steps of G whose rewards are D's scores of
   Monte Carlo rollouts (`policy_gradient_step`), then d-steps rounds of D training on fresh
   negatives. Either side can be frozen (`adversarial.train_g` / `train_d`).

The maths is in small pure functions: rollouts and rewards in `seqgan.rl.rollout`, baselines,
discounts, the policy-gradient and KL losses in `seqgan.rl.losses`. This module says what is
computed in which order. Options beyond the paper (all off by default, `adversarial.*`): a baseline
('mean', 'prefix'), a discount, a KL penalty against a frozen copy of the pre-trained G
(`reference`, saved in checkpoints), and rewards whose cost grows linearly with the length
(docs/long_sequences.md): rollouts from every k-th prefix only (`rollout_stride`), or none at all,
Q(t) read off a causal D that scores every prefix in one pass (`reward=prefix_d`).

Conditional runs (`condition.kind`) are this same loop with each set's conditions passed along:
the policy-gradient batch is sampled for conditions drawn from the training data's, every
sequence keeps its condition through the rollouts and D's scores D(y, c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from seqgan.algorithms.base import Context, register
from seqgan.algorithms.common import Streams, clipped_step
from seqgan.algorithms.gan import GAN
from seqgan.config import AdversarialConfig, ExperimentConfig
from seqgan.distributed import SINGLE, Dist, all_reduce_, all_reduce_sum, call, global_mean_scale, replicate
from seqgan.errors import ConfigError, NonFiniteLossError
from seqgan.models.condition import pick_rows
from seqgan.models.discriminator import Discriminator, continuation_prob_real, prefix_prob_real, prob_real
from seqgan.models.generator import Generator, frozen_copy
from seqgan.rl.losses import discount_rewards, masked_mean, pg_advantages, pg_loss, token_kl, token_nll
from seqgan.rl.rollout import Scorer, rollout_rewards, update_rollout_policy


@dataclass
class Players:
    """The models one policy-gradient step reads."""

    generator: Generator
    rollout: Generator
    """The delayed copy of G that continues prefixes (the paper code's rollout network)."""
    discriminator: Discriminator | None
    reference: Generator | None = None
    """A frozen copy of the pre-trained G: the KL penalty's anchor (adversarial.kl_weight > 0)."""
    score: Scorer | None = None
    """What scores the rollouts' completed sequences, tokens (R, T) and conditions -> reward (R,),
    in place of D's P(real) (another algorithm's critic, e.g. RankGAN's ranker); None: D's."""


@register
class SeqGAN(GAN):
    name = "seqgan"
    summary = "the paper: G by policy gradient, rewards from Monte Carlo rollouts scored by D"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rollout = frozen_copy(self.generator)
        # Only a run with a KL penalty has (and checkpoints) a reference model.
        self.reference = frozen_copy(self.generator) if ctx.cfg.adversarial.kl_weight > 0 else None
        self.add_gan_optimizers()

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        """adversarial.reward=prefix_d reads D's score of every prefix: only a causal D has one."""
        if cfg.adversarial.reward != "prefix_d":
            return
        d = cfg.discriminator
        causal = d.causal if d.kind == "cnn" else not d.bidirectional and d.rnn_pooling == "last"
        if not causal:
            raise ConfigError(
                "adversarial.reward=prefix_d needs a D that scores every prefix: set discriminator.causal=true (CNN), or "
                "discriminator.kind=rnn discriminator.bidirectional=false (and rnn_pooling=last)"
            )
        if cfg.condition.kind != "none":
            raise ConfigError(
                "adversarial.reward=prefix_d is for unconditional runs; remove condition.kind or use reward=rollout"
            )

    def models(self) -> dict[str, torch.nn.Module]:
        models = {"generator": self.generator, "rollout": self.rollout, "discriminator": self.discriminator}
        return models | ({"reference": self.reference} if self.reference is not None else {})

    def begin_phase(self, phase: str) -> None:
        super().begin_phase(phase)
        if phase == "adversarial" and self.cfg.adversarial.epochs > 0:
            # the rollout policy (and the KL reference) start as copies of the pre-trained G
            self.rollout.load_state_dict(self.generator.state_dict())
            if self.reference is not None:
                self.reference.load_state_dict(self.generator.state_dict())

    # ---------------------------------------------------------------- ALGO LOGIC

    def generator_step(self) -> dict[str, float]:
        players = Players(self.generator, self.rollout, self.discriminator, self.reference)
        loss, reward, kl = policy_gradient_step(
            players,
            self.optimizers["adversarial"].optimizer,
            self.cfg.adversarial,
            self.data.length,
            self.streams,
            dist=self.dist,
            model=self.wrappers["generator"],
            cond_pool=self.data.cond_train,
        )
        return {"g_loss": loss, "mean_reward": reward} | ({"kl_mle": kl} if kl is not None else {})


def policy_gradient_step(
    players: Players,
    optimizer: torch.optim.Optimizer,
    a: AdversarialConfig,
    seq_len: int,
    streams: Streams,
    *,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
    cond_pool: torch.Tensor | None = None,
) -> tuple[float, float, float | None]:
    """One adversarial G step: sample a batch, reward it by Monte Carlo rollouts scored by D
    (a.rollout_num continuations per a.rollout_stride-th prefix, a.rollout_rows(device) rows per tensor
    operation), take a policy-gradient step, then move the rollout policy towards G
    (a.rollout_update_rate). a.reward=prefix_d: the rewards are D's scores of every prefix of the
    batch, one pass of a causal D, and nothing is rolled out.

    Conditional runs: the batch is sampled for conditions drawn from `cond_pool` (the real data's,
    (R, ...)); each sequence keeps its condition through the rollouts, D's scores D(y, c), the
    log-probabilities and the KL term.

    a.discount < 1 discounts the rewards and a.baseline is subtracted (`advantages`). a.kl_weight > 0
    adds kl_weight * KL(G || reference) per valid token of the sampled batch (`token_kl`). Returns
    (loss, mean reward, mean KL or None when kl_weight = 0); the mean reward is before discount and baseline.

    Under torchrun each rank samples and rolls out batch_size / world sequences with its own
    sample stream; the baseline and the loss's mean are taken over the global batch, DDP averages
    the gradients, so every rank takes the same step and the rollout policy stays identical."""
    g = players.generator
    model = model or replicate(g, dist)
    g.eval()
    rows = a.batch_size // dist.world
    cond = pick_rows(cond_pool, rows, streams.sample)  # (B, ...) or None
    samples, noise = g.sample(rows, seq_len, streams.sample, return_noise=True, cond=cond)  # (B, T), (B, Z) or None
    rewards = action_values(players, samples, noise, cond, a, streams.sample)  # (B, T)
    g.train()
    mask = g.mask(samples)
    adv = advantages(rewards, a.baseline, a.discount, mask, dist, a.rollout_stride)  # (B, T)
    loss, kl = pg_objective(players, model, samples, noise=noise, cond=cond, adv=adv, mask=mask, kl_weight=a.kl_weight)
    if dist.parallel:
        loss = loss * global_mean_scale(samples.numel() if mask is None else float(mask.sum()), dist, samples.device)
    # one host read per G step (which is heavy anyway): the logged values, and the check before stepping
    values = torch.stack([loss.detach(), rewards.mean(), loss.new_zeros(()) if kl is None else kl.detach()]).tolist()
    if not math.isfinite(values[0]):
        raise NonFiniteLossError(f"the policy-gradient loss is {values[0]}")
    clipped_step(g.parameters(), optimizer, loss, a.grad_clip)
    if a.reward == "rollout":  # prefix_d never rolls out: its rollout policy stays as pre-trained
        update_rollout_policy(players.rollout, g, a.rollout_update_rate)
    # the loss is already this rank's share; the reward is a plain mean over equal shards; the KL is reported per rank's tokens
    loss_sum, reward_sum, kl_sum = all_reduce_sum(values, dist, samples.device)
    return loss_sum / dist.world, reward_sum / dist.world, None if kl is None else kl_sum / dist.world


def action_values(
    players: Players,
    samples: torch.Tensor,
    noise: torch.Tensor | None,
    cond: torch.Tensor | None,
    a: AdversarialConfig,
    rng: torch.Generator,
) -> torch.Tensor:
    """Q (B, T) of each token of samples (B, T) as a.reward says: 'rollout' (`rollout_q`), or
    'prefix_d', Q(t) = D(y_1..y_t) read off one pass of a causal D (eval mode), with no rollouts."""
    if a.reward == "prefix_d":
        players.discriminator.eval()
        return prefix_prob_real(players.discriminator, samples)
    return rollout_q(players, samples, noise, cond, a, rng)


def rollout_q(
    players: Players,
    samples: torch.Tensor,
    noise: torch.Tensor | None,
    cond: torch.Tensor | None,
    a: AdversarialConfig,
    rng: torch.Generator,
) -> torch.Tensor:
    """Q (B, T) of each token of samples (B, T): D's scores (in eval mode: no dropout while scoring
    rewards, as in the paper's code) of the rollout policy's continuations, each sequence under its
    own z and condition; `players.score`'s instead when it is set."""
    score, score_rollouts, chunk = players.score, None, a.rollout_rows(samples.device.type)
    if score is None:
        d = players.discriminator
        d.eval()

        def score(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            return prob_real(d, x, chunk, c)

        def score_rollouts(y: torch.Tensor, continued: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            return continuation_prob_real(d, y, continued, a.rollout_stride, c, chunk)

    return rollout_rewards(
        players.rollout,
        score,
        samples,
        a.rollout_num,
        rng,
        chunk_rows=chunk,
        noise=noise,
        cond=cond,
        stride=a.rollout_stride,
        score_rollouts=score_rollouts,
    )


def pg_objective(
    players: Players,
    model: torch.nn.Module,
    samples: torch.Tensor,
    *,
    noise: torch.Tensor | None,
    cond: torch.Tensor | None,
    adv: torch.Tensor,
    mask: torch.Tensor | None,
    kl_weight: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The loss of a policy-gradient step on samples (B, T) with advantages adv (B, T), and the mean
    KL(G || reference) per valid token when kl_weight > 0 (else None). `model` is G's wrapper."""
    if kl_weight == 0:
        return pg_loss(call(model, Generator.log_probs, samples, noise=noise, cond=cond), adv, "none", mask), None
    if players.reference is None:
        raise ValueError("kl_weight > 0 needs the reference generator")
    logits = call(model, Generator.forward, samples, noise, cond)  # (B, T, V): the KL needs the whole distribution
    with torch.no_grad():
        ref_logits = players.reference(samples, noise, cond)
    kl = masked_mean(token_kl(logits, ref_logits), mask)
    return pg_loss(-token_nll(logits, samples), adv, "none", mask) + kl_weight * kl, kl


def advantages(
    rewards: torch.Tensor, baseline: str, discount: float, mask: torch.Tensor | None, dist: Dist, stride: int = 1
) -> torch.Tensor:
    """The policy gradient's weights A (B, T) from the rollouts' Q (B, T): discount, then baseline
    (`pg_advantages`), the batch means taken over the global batch under torchrun.

    'prefix' subtracts the prefix's value before the discount, so that A(t) = gamma^(L - t) (Q(t) -
    Q(t-1)): the token's discounted advantage. ('mean' subtracts the mean of the discounted Q.)
    stride: the rewards' adversarial.rollout_stride; 'prefix' then subtracts the previous stride's
    Q, shared by the whole stride as the reward is."""

    def means(q: torch.Tensor) -> torch.Tensor | None:
        return _global_step_mean(q, mask, dist) if dist.parallel else None

    if baseline == "prefix":
        return discount_rewards(pg_advantages(rewards, "prefix", mask, means(rewards), stride), discount, mask)
    q = discount_rewards(rewards, discount, mask)
    return pg_advantages(q, baseline, mask, means(q) if baseline == "mean" else None)


def _global_step_mean(q: torch.Tensor, mask: torch.Tensor | None, dist: Dist) -> torch.Tensor:
    """(1, T): the mean of q (B, T) at each time step over the global batch's running sequences."""
    weights = torch.ones_like(q) if mask is None else mask.to(q.dtype)
    sums = all_reduce_(torch.stack([(q * weights).sum(dim=0), weights.sum(dim=0)]), dist)  # (2, T)
    return (sums[0] / sums[1].clamp(min=1)).unsqueeze(0)
