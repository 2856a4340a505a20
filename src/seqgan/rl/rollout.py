"""Rewards from Monte Carlo rollouts (Yu et al., 2017, Eq. 4) and the delayed rollout policy.

For a generated batch Y (B, T), the action value of token t is

    Q(Y_1..t-1, y_t) = 1/N sum_n D(Y_1..t, MC_n(Y_1..t))   for t < T
                     = D(Y_1..T)                              for t = T

where MC_n continues the prefix Y_1..t with the rollout policy. With a stride k > 1 (cost about
N x T^2 / (2k) sampled tokens instead of N x T^2 / 2) only the prefixes t = k, 2k, ... below T
are rolled out, and each Q is shared over the tokens of its stride (`stride_columns`).
All N x P continuations (P = (T-1) // k prefixes) are one flat set of rows, ordered (t, n, b)
with the prefix length t ascending. A row of prefix t needs T - t sampled tokens, so at sampling
step s the rows still running (T - t >= s) are a leading slice of the rows: the whole set is
sampled with one loop over s on shrinking slices, in chunks of rows that bound memory, never a
Python loop over rollouts or prefixes. Each row starts from the policy's cached state after its
prefix, so no prefix is re-read. With an end token (text), a continuation stops at the end token
and is padded, and the continuation of a prefix that has already ended is all padding.

Rewards are assembled with an explicit (N, T, B) layout and reduced over N to (B, T).

Conditional SeqGAN: each sequence's condition c_b (B, ...) goes into the policy's prefix states,
so every continuation of sequence b is drawn from p(. | c_b), and D scores each completed row
with the condition of the sequence it continues: Q(t) = 1/N sum_n D(Y_1..t + MC_n, c_b).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seqgan.models.condition import repeat_rows
from seqgan.models.generator import Generator
from seqgan.models.sampling import LOG2_E, block_cdf, exp2_probs, inverse_cdf, sample_base2

Scorer = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # tokens (R, T), cond (R, ...) or None -> P(real) (R,)
RolloutScorer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
"""sequences (B, T), their continuations (P, N, B, T) as `rollout_sequences` returns them, cond (B, ...)
or None -> P(real) of each continuation (P, N, B) (e.g. `continuation_prob_real`, which shares the
work of common prefixes)."""


@torch.no_grad()
def rollout_sequences(
    policy: Generator,
    sequences: torch.Tensor,
    num_rollouts: int,
    generator: torch.Generator,
    *,
    chunk_rows: int = 1024,
    temperature: float = 1.0,
    noise: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    stride: int = 1,
) -> torch.Tensor:
    """Complete every stride-th prefix of every sequence N times.

    sequences: (B, T); noise: (B, noise_dim), each sequence's z when the policy has a noise input,
    and cond (B, ...), each sequence's condition for a conditional policy (every continuation of
    sequence b goes on from z_b and c_b). Returns (P, N, B, T), P = (T-1) // stride: [j, n, b] is
    sequence b's first t = (j+1) * stride tokens followed by the n-th continuation sampled by
    `policy` (stride 1: every prefix t = 1..T-1).
    """
    (B, T), N = sequences.shape, num_rollouts
    P = (T - 1) // stride
    states, logits = policy.prefix_states(sequences, noise, cond)  # T-1 entries: state tensors (L, B, H), logits (B, V)
    if stride > 1:  # keep the states after the prefixes t = stride, 2 stride, ...
        states, logits = states[stride - 1 :: stride], logits[stride - 1 :: stride]
    if P == 0:  # no prefix to roll out (stride >= T)
        return sequences.new_zeros(0, N, B, T)
    prefix_state = tuple(torch.stack([s[i] for s in states], dim=1) for i in range(len(states[0])))  # (L, P, B, H)
    step = policy.sampling_step(temperature)  # (token, state) -> base-2 logits at the temperature, state
    prefix_p, prefix_cdf = prefix_distributions(logits, temperature)  # (P B, V), (P B, blocks)
    R = P * N * B
    rows = torch.arange(R, device=sequences.device)
    prefix_index = rows // (N * B)  # (R,), ascending: rows are in (t, n, b) order
    prefix_len = (prefix_index + 1) * stride  # (R,)
    batch_index = rows % B  # (R,)
    out = sequences.repeat(P * N, 1)  # (R, T): prefixes in place, suffixes overwritten below
    prefix_ended = ended_prefixes(sequences, policy.eos_token, stride, P)  # (P, B) or None

    for begin in range(0, R, chunk_rows):
        chunk = rows[begin : begin + chunk_rows]
        pidx, plen, bidx = prefix_index[chunk], prefix_len[chunk], batch_index[chunk]
        state = tuple(s[:, pidx, bidx] for s in prefix_state)  # each (L, rows, H)
        first = pidx * B + bidx  # (rows,): each row's prefix, a row of prefix_p
        # A continuation of a prefix that already ended is all padding; one that emits the end token stops.
        done = prefix_ended[pidx, bidx] if prefix_ended is not None else None
        step_logits = None  # before the first step: y_{t+1} comes from the prefix's row of prefix_p
        for k in range(1, T):
            active = running_rows(begin, len(chunk), T - k, stride, N * B)  # rows with >= k tokens to draw
            if active == 0:
                break
            if step_logits is None:  # k = 1: every row of the chunk draws
                token = inverse_cdf(prefix_p, generator, prefix_cdf, first)  # (rows,)
            else:
                token = sample_base2(step_logits[:active], generator)  # (active,)
            token, done = policy.finish(token, None if done is None else done[:active])
            out[chunk[:active], plen[:active] + k - 1] = token
            if k < T - (begin // (N * B) + 1) * stride:  # the chunk's first (shortest) prefix needs another step
                step_logits, state = step(token, tuple(s[:, :active] for s in state))
    return out.view(P, N, B, T)


def prefix_distributions(logits: list[torch.Tensor], temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy's distributions of y_{t+1} after the P rolled-out prefixes, from their logits
    P x (B, V): unnormalised probabilities (P B, V), row j B + b for prefix j of sequence b, from
    logits in base 2 like `sampling_step`'s, and their `block_cdf` (P B, blocks). The first token of
    all N continuations of a prefix comes from this one distribution, so it is exponentiated and
    summed once per prefix, not once per row: the same draws, and at the paper's sizes 0.6 ms
    instead of 4.2 for a chunk's first draw (about 65 ms of a G step on one CPU thread)."""
    p = exp2_probs(torch.cat(logits).float().mul_(LOG2_E / temperature))  # (P B, V), in place
    return p, block_cdf(p)


def ended_prefixes(sequences: torch.Tensor, eos_token: int | None, stride: int, num_prefixes: int) -> torch.Tensor | None:
    """(P, B) bool: [j, b] whether the j-th rolled-out prefix of sequence b (its first (j + 1) stride
    tokens) holds the end token; None without an end token."""
    if eos_token is None:
        return None
    ended = (sequences == eos_token).cummax(dim=1).values  # (B, T): [b, t-1] for y_1..y_t
    return ended[:, stride - 1 : num_prefixes * stride : stride].T.contiguous()


def running_rows(begin: int, rows: int, longest: int, stride: int, group: int) -> int:
    """How many of the rows begin .. begin + rows - 1 of a rollout set (ordered (t, n, b), `group`
    = N x B rows per prefix, prefix j of length (j + 1) * stride) continue a prefix of length
    <= `longest`: a leading slice of them, since prefixes grow with the row. Plain arithmetic, so the
    sampling loop reads nothing back from the device."""
    return max(0, min(begin + rows, (longest // stride) * group) - begin)


def stride_columns(seq_len: int, stride: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(T,): which of the P + 1 rewards of a strided rollout each token takes.

    The rewards are Q(k), Q(2k), ..., Q(Pk) from the rolled-out prefixes (P = (T-1) // k) and D(Y)
    at T. Token t (1-based) takes column (t - 1) // k: Q(jk) of the first scored prefix that holds
    it, so the tokens (j-1)k+1 .. jk share Q(jk) and the last T - Pk tokens share D(Y). Every token
    is thus rewarded by a score that has read it. Stride 1: column t - 1, Q(t) itself."""
    return torch.arange(seq_len, device=device) // stride


@torch.no_grad()
def rollout_rewards(
    policy: Generator,
    score: Scorer,
    sequences: torch.Tensor,
    num_rollouts: int,
    generator: torch.Generator,
    *,
    chunk_rows: int = 1024,
    noise: torch.Tensor | None = None,
    cond: torch.Tensor | None = None,
    stride: int = 1,
    score_rollouts: RolloutScorer | None = None,
) -> torch.Tensor:
    """Q(t) for every token of a generated batch: sequences (B, T) -> rewards (B, T).

    noise: (B, noise_dim) and cond (B, ...): the z and the condition each sequence was sampled with
    (see `rollout_sequences`). score maps tokens (R, T) and their conditions (R, ...) (None for an
    unconditional run) to D's probability of "real" (R,), e.g. `prob_real` with D in eval mode;
    score_rollouts, when given, scores the continuations instead, all of them in one call.
    stride k: only the prefixes k, 2k, ... are rolled out; tokens (j-1)k+1 .. jk share Q(jk) and
    the tokens after the last rolled-out prefix share D(Y) (`stride_columns`).
    """
    B, T = sequences.shape
    N = num_rollouts
    completed = rollout_sequences(policy, sequences, N, generator, chunk_rows=chunk_rows, noise=noise, cond=cond, stride=stride)
    P = len(completed)  # (P, N, B, T)
    if score_rollouts is not None:
        partial = score_rollouts(sequences, completed, cond).permute(1, 0, 2)  # (N, P, B)
    else:  # rows (t, n, b): row r continues sequence r % B, so the conditions repeat the batch's in order
        partial = score(completed.reshape(-1, T), repeat_rows(cond, P * N)).view(P, N, B).permute(1, 0, 2)
    full = score(sequences, cond).view(1, 1, B).expand(N, 1, B)  # (N, 1, B): t = T needs no rollout
    rewards = torch.cat([partial, full], dim=1).mean(dim=0)  # (N, P + 1, B) -> (P + 1, B)
    if stride > 1:
        rewards = rewards[stride_columns(T, stride, rewards.device)]  # (T, B)
    return rewards.T.contiguous()  # (B, T)


@torch.no_grad()
def update_rollout_policy(policy: nn.Module, generator: nn.Module, rate: float) -> None:
    """theta_roll <- rate * theta_roll + (1 - rate) * theta (the paper's code: rate 0.8).

    rate = 0 makes the rollout policy a copy of the current generator.
    """
    for p_roll, p in zip(policy.parameters(), generator.parameters(), strict=True):
        p_roll.mul_(rate).add_(p, alpha=1.0 - rate)
