"""One optimisation step or epoch of each kind: MLE, discriminator, policy gradient.

Each takes the models, an optimizer and explicit generators, and returns the loss it measured.
Under torchrun (`dist`, see `seqgan.training.distributed`) each rank trains on its shard of every
global batch through `model`, the DDP wrapper of the model being trained; losses are scaled so that
DDP's average of the ranks' gradients is the gradient of the global batch's mean, and the returned
losses are the global ones.

Conditional runs pass each data set's conditions along with it (`cond`, row for row): MLE reads
every real sequence with its own condition; G's samples (D's negatives, the policy-gradient batch,
D's accuracy) are drawn for conditions picked from the real data's, and D sees every sequence,
real or generated, with its condition.
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.condition import mismatched_pairs, pick_rows
from seqgan.models.discriminator import prob_real, prob_real_alone
from seqgan.models.generator import Generator
from seqgan.rl.losses import (
    discount_rewards,
    discriminator_loss,
    masked_mean,
    pg_advantages,
    pg_loss,
    token_kl,
    token_nll,
)
from seqgan.rl.rollout import rollout_rewards, update_rollout_policy
from seqgan.training.distributed import (
    SINGLE,
    Dist,
    Methods,
    all_gather_rows,
    all_reduce_,
    all_reduce_sum,
    global_mean_scale,
)


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
    dist: Dist = SINGLE,
    model: nn.Module | None = None,
    cond: torch.Tensor | None = None,
) -> float:
    """One pass of teacher-forced MLE over `data` (R, T) in shuffled batches (the last partial
    batch is dropped, as in the paper's code), each sequence read with its condition cond (R, ...)
    for a conditional G. Returns the mean batch loss.

    A generator with a noise input reads each real sequence with a fresh z ~ N(0, I), drawn from
    `shuffle` after the batch order (nothing is drawn without one). Under torchrun every rank draws
    the same order and noise for the global batch and trains on its rows of it."""
    model = model or Methods(generator)
    generator.train()
    perm = torch.randperm(len(data), generator=shuffle).to(data.device)
    losses = []
    for i in range(0, len(data) - batch_size + 1, batch_size):
        idx = perm[i : i + batch_size]
        noise = generator.draw_noise(len(idx), shuffle)
        rows = dist.rows(len(idx))
        batch, noise = data[idx][rows], None if noise is None else noise[rows]
        batch_cond = None if cond is None else cond[idx][rows]
        mask = generator.mask(batch)
        # the fused output layer: the same value as mle_loss(G(batch), batch), padding left out
        loss = -masked_mean(model("log_probs", batch, noise=noise, cond=batch_cond), mask)
        if dist.parallel:
            loss = loss * global_mean_scale(batch.numel() if mask is None else float(mask.sum()), dist, batch.device)
        check_finite(loss, "MLE")
        _clipped_step(generator.parameters(), optimizer, loss, grad_clip)
        losses.append(loss.item())
    total = all_reduce_sum([sum(losses)], dist, data.device)[0] / dist.world  # each rank's share, summed
    return total / max(len(losses), 1)


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
    dist: Dist = SINGLE,
    model: nn.Module | None = None,
    cond: torch.Tensor | None = None,
    mismatched: int = 0,
) -> float:
    """Draw `num_negatives` fresh sequences from G, pair them with as many real ones (all of
    `real` when it holds that many, as in the paper), and train D for `epochs` passes.

    Conditional runs: cond (R, ...) the conditions of `real`; negatives are sampled for conditions
    drawn from them, and D learns real (y, c) pairs against generated ones. `mismatched` > 0 adds
    up to that many more negatives: real sequences shown with another row's condition
    (`mismatched_pairs`), so that D also judges whether y fits c. A classifier D
    (condition_join=classifier) learns real/fake on every row and, on the real rows alone, their
    class (labels) or which of the batch's vectors is theirs (features).
    Under torchrun each rank samples num_negatives / world of the negatives, all ranks gather them
    (in rank order) into the same global set, and each trains on its rows of every global batch."""
    model = model or Methods(discriminator)
    seq_len = real.shape[1]
    generator.eval()
    fake_cond = pick_rows(cond, num_negatives // dist.world, sample_rng)
    fake = all_gather_rows(generator.sample(num_negatives // dist.world, seq_len, sample_rng, cond=fake_cond), dist)
    pick = torch.randperm(len(real), generator=shuffle)[: min(num_negatives, len(real))].to(real.device)
    x = torch.cat([real[pick], fake])
    x_cond = None if cond is None else torch.cat([cond[pick], all_gather_rows(fake_cond, dist)])
    if cond is not None and mismatched > 0:
        rows, wrong = mismatched_pairs(cond, mismatched, shuffle)  # the same draw on every rank
        x, x_cond = torch.cat([x, real[rows]]), torch.cat([x_cond, wrong])
    is_real = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # (R,): real pairs first
    is_real[: len(pick)] = True
    classifier = getattr(discriminator, "classifier", None)  # an AC-GAN D (condition_join=classifier)
    discriminator.train()
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=shuffle).to(x.device)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size][dist.rows(batch_size)]
            # equal shards of a plain batch mean: DDP's average of the ranks' gradients is the global one
            if classifier is None:
                logits, class_loss = model("forward", x[idx], None if x_cond is None else x_cond[idx]), 0.0
            else:  # AC-GAN: real/fake on every row, the class on the real rows only
                logits, class_logits = model("realness_and_classes", x[idx])
                real_rows = is_real[idx]
                class_loss = classifier.loss(class_logits[real_rows], x_cond[idx][real_rows])
            loss = class_loss + discriminator_loss(
                logits, is_real[idx], label_smoothing, discriminator.out.weight, discriminator.out.bias, l2_reg
            )
            check_finite(loss, "discriminator")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return all_reduce_sum([sum(losses)], dist, x.device)[0] / dist.world / max(len(losses), 1)


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
    dist: Dist = SINGLE,
    model: nn.Module | None = None,
    cond_pool: torch.Tensor | None = None,
) -> tuple[float, float, float | None]:
    """One adversarial G step: sample a batch, reward it by Monte Carlo rollouts scored by D,
    take a policy-gradient step, then move the rollout policy towards G.

    Conditional runs: the batch is sampled for conditions drawn from `cond_pool` (the real data's,
    (R, ...)); each sequence keeps its condition through the rollouts, D's scores D(y, c), the
    log-probabilities and the KL term.

    discount < 1 discounts the rewards and a baseline is subtracted (`advantages`). kl_weight > 0 adds
    kl_weight * KL(G || reference) per valid token of the sampled batch (`token_kl`), `reference`
    being a frozen copy of the pre-trained G read with the same z. Returns (loss, mean reward,
    mean KL or None when kl_weight = 0); the mean reward is before discount and baseline.

    Under torchrun each rank samples and rolls out batch_size / world sequences with its own
    `sample_rng`; the baseline and the loss's mean are taken over the global batch, DDP averages
    the gradients, so every rank takes the same step and the rollout policy stays identical."""
    model = model or Methods(generator)
    generator.eval()
    rows = batch_size // dist.world
    cond = pick_rows(cond_pool, rows, sample_rng)  # (B, ...) or None
    samples, noise = generator.sample(rows, seq_len, sample_rng, return_noise=True, cond=cond)  # (B, T), (B, Z) or None
    discriminator.eval()  # no dropout while scoring rewards, as in the paper's code
    # rewards (B, T): each sequence's rollouts and D's scores under its own condition
    rewards = rollout_rewards(
        rollout_policy, lambda x, c: prob_real(discriminator, x, chunk_rows, c), samples, num_rollouts, sample_rng, chunk_rows,
        noise, cond,
    )  # fmt: skip
    generator.train()
    mask = generator.mask(samples)
    adv = advantages(rewards, baseline, discount, mask, dist)  # (B, T)
    kl = None
    if kl_weight == 0:
        loss = pg_loss(model("log_probs", samples, noise=noise, cond=cond), adv, "none", mask)
    else:
        if reference is None:
            raise ValueError("kl_weight > 0 needs the reference generator")
        logits = model("forward", samples, noise, cond)  # (B, T, V): the KL needs the whole distribution
        with torch.no_grad():
            ref_logits = reference(samples, noise, cond)
        log_probs = -token_nll(logits, samples)  # (B, T)
        kl = masked_mean(token_kl(logits, ref_logits), mask)
        loss = pg_loss(log_probs, adv, "none", mask) + kl_weight * kl
    if dist.parallel:
        loss = loss * global_mean_scale(samples.numel() if mask is None else float(mask.sum()), dist, samples.device)
    check_finite(loss, "policy-gradient")
    _clipped_step(generator.parameters(), optimizer, loss, grad_clip)
    update_rollout_policy(rollout_policy, generator, rollout_update_rate)
    if not dist.parallel:
        return loss.item(), rewards.mean().item(), None if kl is None else kl.item()
    # the loss is already this rank's share; the reward is a plain mean over equal shards; the KL is reported per rank's tokens
    loss_sum, reward_sum, kl_sum = all_reduce_sum(
        [loss.item(), rewards.mean().item(), 0.0 if kl is None else kl.item()], dist, samples.device
    )
    return loss_sum / dist.world, reward_sum / dist.world, None if kl is None else kl_sum / dist.world


def advantages(rewards: torch.Tensor, baseline: str, discount: float, mask: torch.Tensor | None, dist: Dist) -> torch.Tensor:
    """The policy gradient's weights A (B, T) from the rollouts' Q (B, T): discount, then baseline
    (`pg_advantages`), the batch means taken over the global batch under torchrun.

    'prefix' subtracts the prefix's value before the discount, so that A(t) = gamma^(L - t) (Q(t) -
    Q(t-1)): the token's discounted advantage. ('mean' subtracts the mean of the discounted Q.)"""

    def means(q: torch.Tensor) -> torch.Tensor | None:
        return _global_step_mean(q, mask, dist) if dist.parallel else None

    if baseline == "prefix":
        return discount_rewards(pg_advantages(rewards, "prefix", mask, means(rewards)), discount, mask)
    q = discount_rewards(rewards, discount, mask)
    return pg_advantages(q, baseline, mask, means(q) if baseline == "mean" else None)


def _global_step_mean(q: torch.Tensor, mask: torch.Tensor | None, dist: Dist) -> torch.Tensor:
    """(1, T): the mean of q (B, T) at each time step over the global batch's running sequences."""
    weights = torch.ones_like(q) if mask is None else mask.to(q.dtype)
    sums = all_reduce_(torch.stack([(q * weights).sum(dim=0), weights.sum(dim=0)]), dist)  # (2, T)
    return (sums[0] / sums[1].clamp(min=1)).unsqueeze(0)


@torch.no_grad()
def discriminator_accuracy(
    discriminator: nn.Module,
    real: torch.Tensor,
    generator: Generator,
    num: int,
    rng: torch.Generator,
    dist: Dist = SINGLE,
    cond: torch.Tensor | None = None,
) -> float:
    """Accuracy of D on `num` held-out real sequences and `num` fresh samples of G (threshold 0.5);
    conditional runs: cond (R, ...) the conditions of `real`, and each sample is drawn for the
    condition of a real one, so D is judged on the same conditions both ways. A classifier D
    (condition_join=classifier) is judged by its real/fake head alone (its class head: d_cond_acc).

    Under torchrun each rank scores its rows of the real ones and as many samples of its own."""
    discriminator.eval()
    generator.eval()
    part = dist.part(min(num, len(real)))
    real, cond = real[:num][part], None if cond is None else cond[:num][part]
    fake = generator.sample(len(real), real.shape[1], rng, cond=cond)
    if getattr(discriminator, "classifier", None) is not None:  # a classifier D: its real/fake head alone
        correct = (prob_real_alone(discriminator, real) > 0.5).sum() + (prob_real_alone(discriminator, fake) <= 0.5).sum()
    else:
        correct = (prob_real(discriminator, real, cond=cond) > 0.5).sum() + (
            prob_real(discriminator, fake, cond=cond) <= 0.5
        ).sum()
    correct, count = all_reduce_sum([float(correct), 2.0 * len(real)], dist, real.device)
    return correct / count


@torch.no_grad()
def discriminator_condition_accuracy(
    discriminator: nn.Module, real: torch.Tensor, cond: torch.Tensor, num: int, rng: torch.Generator, dist: Dist = SINGLE
) -> float:
    """How often D prefers a held-out real sequence under its own condition to the same sequence
    under another one (drawn by `mismatched_pairs`): D(y, c) > D(y, c'), a tie counting half. 0.5 is
    a D that ignores the condition; the matching-aware negatives (discriminator.mismatched) train it towards 1.
    real (R, T), cond (R, ...); under torchrun each rank scores its share of the pairs."""
    discriminator.eval()
    rows, wrong = mismatched_pairs(cond[:num], min(num, len(real)), rng)  # (M,), (M, ...)
    part = dist.part(len(rows))
    rows, wrong = rows[part], wrong[part]
    right_p = prob_real(discriminator, real[rows], cond=cond[rows])
    wrong_p = prob_real(discriminator, real[rows], cond=wrong)
    wins = (right_p > wrong_p).float() + 0.5 * (right_p == wrong_p).float()  # (M,): a tie counts half
    correct, count = all_reduce_sum([float(wins.sum()), float(len(rows))], dist, real.device)
    return correct / max(count, 1.0)


def discriminator_metrics(
    discriminator: nn.Module,
    real: torch.Tensor,
    generator: Generator,
    num: int,
    rng: torch.Generator,
    dist: Dist = SINGLE,
    cond: torch.Tensor | None = None,
) -> dict[str, float]:
    """d_acc (`discriminator_accuracy`) and, for conditional runs, d_cond_acc (`discriminator_condition_accuracy`)."""
    out = {"d_acc": discriminator_accuracy(discriminator, real, generator, num, rng, dist, cond)}
    if cond is not None:
        out["d_cond_acc"] = discriminator_condition_accuracy(discriminator, real, cond, num, rng, dist)
    return out
