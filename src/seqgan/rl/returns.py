"""Dense per-token rewards turned into policy-gradient weights, as ScratchGAN does (de Masson
d'Autume et al., NeurIPS 2019, Sec. 3): every prefix of a sample gets its own reward r_t from the
discriminator's verdict on y_1..y_t (its official code: r_t = 2 D(y_1..t) - 1, `centred_rewards`;
or D's logit of "real"), the return of token t is the discounted sum of the rewards from t on,
R_t = sum_{s >= t} gamma^(s - t) r_s, and a baseline is subtracted: the batch mean of R_t at each
step (`mean_baseline_advantages`), or the official code's one number, an exponentially weighted
moving average over G steps of the mean return of the batch (`ewma_baseline`).
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


def centred_rewards(logits: torch.Tensor) -> torch.Tensor:
    """D's logits of "real" (B, T) -> rewards 2 sigmoid(l) - 1 = 2 D - 1 in (-1, 1) (B, T): ScratchGAN's
    code, which found it more stable than log D; 0 where D cannot tell (D = 1/2)."""
    return 2.0 * torch.sigmoid(logits) - 1.0


def ewma_baseline(previous: float, batch_mean: float, decay: float) -> float:
    """The baseline after one more batch: decay * previous + (1 - decay) * batch_mean (ScratchGAN's
    code: decay 0.08, so mostly the batch's own mean; the new value is the one subtracted)."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    return decay * previous + (1.0 - decay) * batch_mean
