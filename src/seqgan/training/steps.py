"""One optimisation step or epoch of each kind: MLE, discriminator, policy gradient.

Each takes the models, an optimizer and explicit generators, and returns the loss it measured.
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.discriminator import prob_real
from seqgan.models.generator import Generator
from seqgan.rl.losses import discount_rewards, discriminator_loss, masked_mean, pg_loss, token_kl, token_nll
from seqgan.rl.rollout import rollout_rewards, update_rollout_policy


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the step was not taken."""


def check_finite(loss: torch.Tensor, name: str) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLossError(f"the {name} loss is {loss.item()}")


def _clipped_step(params, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def mle_epoch(
    generator: Generator,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    shuffle: torch.Generator,
) -> float:
    """One pass of teacher-forced MLE over `data` (R, T) in shuffled batches (the last partial
    batch is dropped, as in the paper's code). Returns the mean batch loss.

    A generator with a noise input reads each real sequence with a fresh z ~ N(0, I), drawn from
    `shuffle` after the batch order (nothing is drawn without one)."""
    generator.train()
    perm = torch.randperm(len(data), generator=shuffle).to(data.device)
    losses = []
    for i in range(0, len(data) - batch_size + 1, batch_size):
        batch = data[perm[i : i + batch_size]]
        noise = generator.draw_noise(len(batch), shuffle)
        # the fused output layer: the same value as mle_loss(G(batch), batch), padding left out
        loss = -masked_mean(generator.log_probs(batch, noise=noise), generator.mask(batch))
        check_finite(loss, "MLE")
        _clipped_step(generator.parameters(), optimizer, loss, grad_clip)
        losses.append(loss.item())
    return sum(losses) / max(len(losses), 1)


def discriminator_round(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: Generator,
    real: torch.Tensor,
    num_negatives: int,
    epochs: int,
    batch_size: int,
    label_smoothing: float,
    l2_reg: float,
    sample_rng: torch.Generator,
    shuffle: torch.Generator,
) -> float:
    """Draw `num_negatives` fresh sequences from G, pair them with as many real ones (all of
    `real` when it holds that many, as in the paper), and train D for `epochs` passes."""
    seq_len = real.shape[1]
    generator.eval()
    fake = generator.sample(num_negatives, seq_len, sample_rng)
    pick = torch.randperm(len(real), generator=shuffle)[: min(num_negatives, len(real))].to(real.device)
    x = torch.cat([real[pick], fake])
    is_real = torch.cat([torch.ones(len(pick), dtype=torch.bool), torch.zeros(len(fake), dtype=torch.bool)]).to(x.device)
    discriminator.train()
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=shuffle).to(x.device)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            loss = discriminator_loss(
                discriminator(x[idx]), is_real[idx], label_smoothing, discriminator.out.weight, discriminator.out.bias, l2_reg
            )
            check_finite(loss, "discriminator")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return sum(losses) / max(len(losses), 1)


def policy_gradient_step(
    generator: Generator,
    rollout_policy: Generator,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    seq_len: int,
    num_rollouts: int,
    grad_clip: float,
    baseline: str,
    rollout_update_rate: float,
    chunk_rows: int,
    sample_rng: torch.Generator,
    discount: float = 1.0,
    kl_weight: float = 0.0,
    reference: Generator | None = None,
) -> tuple[float, float, float | None]:
    """One adversarial G step: sample a batch, reward it by Monte Carlo rollouts scored by D,
    take a policy-gradient step, then move the rollout policy towards G.

    discount < 1 discounts the rewards (`discount_rewards`) before the baseline. kl_weight > 0 adds
    kl_weight * KL(G || reference) per valid token of the sampled batch (`token_kl`), `reference`
    being a frozen copy of the pre-trained G read with the same z. Returns (loss, mean reward,
    mean KL or None when kl_weight = 0); the mean reward is before discount and baseline."""
    generator.eval()
    samples, noise = generator.sample(batch_size, seq_len, sample_rng, return_noise=True)  # (B, T), (B, Z) or None
    discriminator.eval()  # no dropout while scoring rewards, as in the paper's code
    rewards = rollout_rewards(
        rollout_policy, lambda x: prob_real(discriminator, x, chunk_rows), samples, num_rollouts, sample_rng, chunk_rows, noise
    )  # (B, T)
    generator.train()
    mask = generator.mask(samples)
    q = discount_rewards(rewards, discount, mask)
    kl = None
    if kl_weight == 0:
        loss = pg_loss(generator.log_probs(samples, noise=noise), q, baseline, mask)
    else:
        if reference is None:
            raise ValueError("kl_weight > 0 needs the reference generator")
        logits = generator(samples, noise)  # (B, T, V): the KL needs the whole distribution
        with torch.no_grad():
            ref_logits = reference(samples, noise)
        log_probs = -token_nll(logits, samples)  # (B, T)
        kl = masked_mean(token_kl(logits, ref_logits), mask)
        loss = pg_loss(log_probs, q, baseline, mask) + kl_weight * kl
    check_finite(loss, "policy-gradient")
    _clipped_step(generator.parameters(), optimizer, loss, grad_clip)
    update_rollout_policy(rollout_policy, generator, rollout_update_rate)
    return loss.item(), rewards.mean().item(), None if kl is None else kl.item()


@torch.no_grad()
def discriminator_accuracy(
    discriminator: nn.Module, real: torch.Tensor, generator: Generator, num: int, rng: torch.Generator
) -> float:
    """Accuracy of D on `num` held-out real sequences and `num` fresh samples of G (threshold 0.5)."""
    discriminator.eval()
    generator.eval()
    real = real[:num]
    fake = generator.sample(len(real), real.shape[1], rng)
    correct = (prob_real(discriminator, real) > 0.5).sum() + (prob_real(discriminator, fake) <= 0.5).sum()
    return float(correct) / (2 * len(real))
