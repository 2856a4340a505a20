"""RankGAN's ranking score and ranker loss as small pure functions (Lin, Li, He, Zhang, Sun, NIPS
2017, "Adversarial Ranking for Language Generation", Eq. 1-3).

A ranker embeds every sentence as a feature vector e(s). Against a reference sentence u, sentence s
is ranked among a comparison set C by a softmax of cosine similarities with temperature gamma:

    P(s | u, C) = exp(gamma cos(e_s, e_u)) / sum_{s' in C + {s}} exp(gamma cos(e_s', e_u))   (Eq. 2)
    R(s | U, C) = mean_{u in U} P(s | u, C)                                                (Eq. 3)

The ranker learns to rank real sentences high among generated ones and generated ones low among
real ones (Eq. 1): it maximises E_real[log R(s | U, C-)] + E_fake[log(1 - R(s | U, C+))], C- drawn
from G's samples, C+ and the references U from the real data. G's reward is R(y | U, C+).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqgan.models.masked import masked_mean


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cos(a_i, b_j): a (A, F), b (B, F) -> (A, B)."""
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def log_rank_probs(e: torch.Tensor, comparison: torch.Tensor, references: torch.Tensor, gamma: float) -> torch.Tensor:
    """log P(s | u, C) of Eq. 2 for every scored sentence and reference: e (B, F) the scored
    sentences' features, comparison (C, F) and references (U, F) -> (B, U). Each scored sentence
    competes with the same C (and not with the other scored ones): C' = C + {s}."""
    own = gamma * cosine_matrix(e, references)  # (B, U)
    others = torch.logsumexp(gamma * cosine_matrix(comparison, references), dim=0)  # (U,): log sum_{s' in C}
    return own - torch.logaddexp(own, others.unsqueeze(0))


def rank_scores(e: torch.Tensor, comparison: torch.Tensor, references: torch.Tensor, gamma: float) -> torch.Tensor:
    """R(s | U, C) of Eq. 3: the mean over references of P(s | u, C). (B, F), (C, F), (U, F) -> (B,)."""
    return log_rank_probs(e, comparison, references, gamma).exp().mean(dim=1)


def log_rank_scores(e: torch.Tensor, comparison: torch.Tensor, references: torch.Tensor, gamma: float) -> torch.Tensor:
    """log R(s | U, C), stable for small scores: (B, F), (C, F), (U, F) -> (B,)."""
    log_p = log_rank_probs(e, comparison, references, gamma)  # (B, U)
    return torch.logsumexp(log_p, dim=1) - math.log(log_p.shape[1])


def ranker_loss(log_r_real: torch.Tensor, r_fake: torch.Tensor, is_real: torch.Tensor | None = None) -> torch.Tensor:
    """Minus Eq. 1's ranker objective: -mean log R(real | U, C-) - mean log(1 - R(fake | U, C+)).

    log_r_real (Br,): log rank scores of real sentences among generated ones; r_fake (Bf,): rank
    scores of generated sentences among real ones. An empty side contributes 0. With is_real (B,)
    bool, both are (B,), every row of a batch scored both ways, and each mean runs over its kind's
    rows only (masks, not a selection of rows: no row count is read back to the host)."""
    if is_real is None:
        return -log_r_real.sum() / max(len(log_r_real), 1) - torch.log1p(-r_fake).sum() / max(len(r_fake), 1)
    log_r_real = torch.where(is_real, log_r_real, 0.0)  # the other kind's rows: finite values, zero gradients
    log_not_fake = torch.log1p(-torch.where(is_real, 0.0, r_fake))
    return -masked_mean(log_r_real, is_real) - masked_mean(log_not_fake, ~is_real)
