"""Dense per-token rewards turned into policy-gradient weights, as ScratchGAN does (de Masson
d'Autume et al., NeurIPS 2019, Sec. 3): every prefix of a sample gets its own reward r_t (the
discriminator's logit of "real" for y_1..y_t), the return of token t is the discounted sum of the
rewards from t on, R_t = sum_{s >= t} gamma^(s - t) r_s, and the baseline is the batch mean of
R_t at each step.
"""

from __future__ import annotations

import torch

from seqgan.rl.losses import step_mean


def discounted_returns(rewards: torch.Tensor, gamma: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """rewards (B, T) -> returns (B, T), R_t = r_t + gamma * R_{t+1}; positions outside `mask`
    (B, T) (after a sequence's end token) neither earn nor carry reward. gamma in [0, 1]."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    r = rewards if mask is None else rewards * mask
    out = torch.empty_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return out


def mean_baseline_advantages(returns: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """returns (B, T) -> R_t less the batch mean of R_t at step t over the sequences running there."""
    return returns - step_mean(returns, mask)
