"""The maths of LeakGAN (Guo, Lu, Cai, Zhang, Yu, Wang, AAAI 2018, "Long Text Generation via
Adversarial Training with Leaked Information"), as small pure functions.

Notation: f_t (F,) is D's feature vector of the prefix y_1..y_t (t = 0..T; f_0 reads no token),
g_t (F,) the MANAGER's goal emitted after reading f_t (t = 0..T-1), c the horizon (`horizon`).

- `rescaled_activation`: the bootstrapped rescaled activation of the rewards (the paper's "Training
  techniques"): R = sigma(delta * (0.5 - rank / B)), ranks within the batch at each time step;
- `manager_loss`: -Q_t cos(f_{t+c} - f_t, g_t), the MANAGER's transition policy gradient;
- `intrinsic_rewards`: the WORKER's reward r^I_t = (1/c) sum_i cos(f_t - f_{t-i}, g_{t-i});
- `worker_loss`: the WORKER's policy gradient on its intrinsic rewards.

The goal the WORKER follows, the sum of the last c goals, is part of G's forward pass:
`seqgan.models.leakgan_generator.pool_goals` (models sit below this layer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rescaled_activation(rewards: torch.Tensor, delta: float) -> torch.Tensor:
    """rewards (B, K) -> (B, K): sigma(delta * (0.5 - rank / B)) with rank = 1 for the highest reward
    of its column, B for the lowest (a column: one time step of the batch). Ties take the order of
    a stable sort (the row that comes first ranks higher). The result depends on the ranks only:
    the same under any increasing transform of D's scores."""
    B = rewards.shape[0]
    order = torch.sort(rewards, dim=0, descending=True, stable=True).indices  # (B, K): row of rank r + 1
    rank = torch.empty_like(order)
    rank.scatter_(0, order, torch.arange(1, B + 1, device=rewards.device).unsqueeze(1).expand_as(order))
    return torch.sigmoid(delta * (0.5 - rank.to(rewards.dtype) / B))


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last dimension; 0 where either vector is zero."""
    return F.cosine_similarity(a, b, dim=-1, eps=1e-8)


def manager_loss(
    features: torch.Tensor, goals: torch.Tensor, q: torch.Tensor, horizon: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The manager's loss: -mean over t = 0..T-c of Q_t * cos(f_{t+c} - f_t, g_t).

    features (B, T+1, F): f_0..f_T; goals (B, T, F): g_0..g_{T-1}; q (B, >= T-c+1): [.., t] the value of
    the goal g_t, which directs the tokens y_{t+1}..y_{t+c} (the caller gives the value of the
    prefix y_1..y_{t+c}; all ones for the pre-training of the manager); mask (B, T) bool: token
    y_{t+1} counts (None: all). Gradients reach the goals only (the features are D's)."""
    T = goals.shape[1]
    n = T - horizon + 1  # goals whose c tokens all fit: t = 0..T-c
    change = (features[:, horizon : horizon + n] - features[:, :n]).detach()  # (B, n, F): f_{t+c} - f_t
    terms = q[:, :n] * _cosine(change, goals[:, :n])  # (B, n)
    if mask is None:
        return -terms.mean()
    m = mask[:, :n].to(terms.dtype)
    return -(terms * m).sum() / m.sum().clamp(min=1.0)


def intrinsic_rewards(features: torch.Tensor, goals: torch.Tensor, horizon: int) -> torch.Tensor:
    """The WORKER's intrinsic reward for token y_t, t = 1..T: (1/k) sum_{i=1..k} cos(f_t - f_{t-i}, g_{t-i})
    with k = min(c, t) (the goals that exist). features (B, T+1, F): f_0..f_T; goals (B, T, F):
    g_0..g_{T-1}. Returns (B, T): [.., t-1] the reward of y_t. No gradient (a reward)."""
    T = goals.shape[1]
    features, goals = features.detach(), goals.detach()
    total = features.new_zeros(features.shape[0], T)
    count = features.new_zeros(T)
    for i in range(1, horizon + 1):  # c terms of (B, T - i + 1) each: a loop over c, not over t
        if i > T:
            break
        # token y_t for t = i..T: f_t - f_{t-i} against g_{t-i}
        total[:, i - 1 :] += _cosine(features[:, i:] - features[:, : T + 1 - i], goals[:, : T + 1 - i])
        count[i - 1 :] += 1
    return total / count


def worker_loss(log_probs: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The worker's policy-gradient loss: -mean of r^I_t log p(y_t | ...): log_probs (B, T) (with gradients), rewards (B, T),
    mask (B, T) bool (None: every token)."""
    terms = rewards.detach() * log_probs
    if mask is None:
        return -terms.mean()
    m = mask.to(terms.dtype)
    return -(terms * m).sum() / m.sum().clamp(min=1.0)
