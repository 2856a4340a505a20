"""MaliGAN's generator objective as small pure functions (Che et al., 2017, "Maximum-Likelihood
Augmented Discrete Generative Adversarial Networks", Sec. 3 and Algorithms 1-2).

With an optimal discriminator, D(y) = p_data(y) / (p_data(y) + p_G(y)), so its odds
r_D(y) = D(y) / (1 - D(y)) equal p_data(y) / p_G(y): importance weights that turn samples of G into
an estimate of the maximum-likelihood gradient E_data[grad log p_G(y)]. The paper normalises them
over the samples that share a source (the whole batch in Algorithm 1, the m samples continuing
one real prefix in Algorithm 2) and subtracts a baseline b:

    grad = sum_i (r_D(y_i) / sum_j r_D(y_j) - b) grad log p_G(y_i)

- `importance_weights`: r_D normalised per group (a softmax of D's logit, exact and overflow-free);
- `maligan_advantages`: the same minus the baseline;
- `mixed_coefficients`: the weight of every token's log-probability in Algorithm 2's mixed
  objective (teacher-forced MLE on the first N tokens, the weighted samples on the rest).
"""

from __future__ import annotations

import torch

BASELINES = ("mean", "none")

_EPS = 1e-6  # D's probability is clamped to [eps, 1 - eps] before its odds are taken


def _groups(x: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """(B,) -> (B / m, m): consecutive rows form a group (the whole batch when group_size is None)."""
    m = len(x) if group_size is None else group_size
    if m < 1 or len(x) % m:
        raise ValueError(f"{len(x)} rows do not split into groups of {m}")
    return x.view(-1, m)


def importance_weights(d_prob: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
    """r_D(y) / sum_j r_D(y_j) over each group: d_prob (B,), D's P(real) of each sample -> (B,).

    Rows [k m, (k + 1) m) are group k (all B rows when group_size is None); each group's weights
    sum to 1 and rise with D(y). r_D = exp(logit D), so the normalised odds are the softmax of D's
    logits within the group: no overflow when D is sure."""
    p = d_prob.detach().double().clamp(_EPS, 1.0 - _EPS)
    logit = torch.log(p) - torch.log1p(-p)  # log r_D(y)
    return torch.softmax(_groups(logit, group_size), dim=1).reshape(-1).to(d_prob.dtype)


def maligan_advantages(d_prob: torch.Tensor, group_size: int | None = None, baseline: str = "mean") -> torch.Tensor:
    """The weight of grad log p_G(y_i) in MaliGAN's gradient: d_prob (B,) -> (B,).

    'mean': b = 1/m, the mean normalised weight, so each group's weights sum to 0 (Texygen and
    TextGAN-PyTorch use the same b); 'none': b = 0, the plain normalised importance weights."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    w = importance_weights(d_prob, group_size)
    if baseline == "none":
        return w
    m = len(w) if group_size is None else group_size
    return w - 1.0 / m


def mle_tokens(length: int, epoch: int, step: int, every: int) -> int:
    """N, the teacher-forced prefix length of Algorithm 2 in adversarial epoch `epoch` (0-based):
    it starts at the sequence length and falls by `step` (K) before every `every` epochs' first
    G step, down to 0 (pure sampling). A function of the epoch alone, so a resumed run agrees."""
    return max(length - step * (epoch // every + 1), 0)


def mixed_coefficients(adv: torch.Tensor, prefix_len: int, seq_len: int, group_size: int) -> torch.Tensor:
    """The coefficient C (B, T) of each log p_G(y_t | y_<t) in Algorithm 2's objective
    sum_{b,t} C[b, t] log p_G(y_bt | y_b<t), for B = n m rows laid out as n groups of m samples
    that share their group's real first `prefix_len` tokens (N):

        C[b, t] = 1/m     for t <= N: the real prefix's MLE term, counted once per group;
        C[b, t] = adv[b]  for t > N: the sample's weight (`maligan_advantages` of its group).

    adv: (B,). With N = 0 every token carries its sample's weight (Algorithm 1)."""
    t = torch.arange(seq_len, device=adv.device)  # 0-based: position t is token t + 1
    prefix = (t < prefix_len).to(adv.dtype).unsqueeze(0)  # (1, T)
    return prefix / group_size + (1.0 - prefix) * adv.unsqueeze(1)  # (B, T)


def maligan_loss(log_probs: torch.Tensor, coef: torch.Tensor, group_size: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """-sum_{b,t} C[b, t] log p_G(y_bt | y_b<t) / (tokens per group): the loss whose gradient is
    Algorithm 2's (minus) gradient, per real token, so its scale matches an MLE step's.

    log_probs (B, T) with gradient; coef (B, T) (`mixed_coefficients`), constants; B = n m rows in
    n groups of group_size = m; mask (B, T) marks the valid tokens (None: all). Without a mask the
    divisor is n T, one group's worth of tokens per real prefix."""
    weighted = coef.detach() * log_probs
    if mask is None:
        return -weighted.sum() * group_size / log_probs.numel()
    return -(weighted * mask).sum() * group_size / mask.sum().clamp(min=1)
