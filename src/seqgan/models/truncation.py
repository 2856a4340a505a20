"""Truncated sampling distributions: top-k (Fan et al., 2018) and nucleus / top-p (Holtzman et al., 2020).

Both act on logits already divided by the temperature, top-k first and top-p on what top-k left,
as Hugging Face's `generate()` composes them. A removed token's logit becomes -inf.

- top-k keeps the tokens whose logit is at least the k-th largest (ties with it are kept too).
- top-p keeps token j when the probability mass of the tokens strictly more probable than j is
  below p: for distinct probabilities, exactly the smallest set of most probable tokens whose
  mass reaches p; tokens tied at the boundary are kept together rather than split arbitrarily.
  The most probable token is always kept. p = 1 keeps every token.

These are the reference definitions (a full sort per row). Sampling uses a faster route to the
same distribution (`seqgan.models.sampling.sample_truncated`).
"""

from __future__ import annotations

import torch


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """logits (R, V) -> (R, V) with every token below the k-th largest logit of its row at -inf."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]  # (R, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def nucleus_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """probs (R, V), non-negative and not necessarily normalised -> (R, V) bool, True for the
    tokens of the top-p nucleus (see the module docstring)."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p >= 1:
        return probs > 0
    sorted_probs = probs.sort(dim=-1, descending=True).values  # (R, V)
    before = torch.cat([torch.zeros_like(sorted_probs[:, :1]), sorted_probs.cumsum(dim=-1)[:, :-1]], dim=-1)  # (R, V)
    budget = p * probs.sum(dim=-1, keepdim=True)  # (R, 1)
    # `before` never decreases, so the positions with before < budget are a leading run 0..m:
    # the nucleus is every token at least as probable as the m-th.
    last = (before < budget).sum(dim=-1, keepdim=True) - 1  # (R, 1), >= 0 since before[:, 0] = 0
    return probs >= sorted_probs.gather(-1, last)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """logits (R, V) -> (R, V) with every token outside the top-p nucleus of softmax(logits) at -inf."""
    keep = nucleus_mask(torch.softmax(logits.float(), dim=-1), p)
    return logits.masked_fill(~keep, float("-inf"))


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Top-k, then top-p, of logits (R, V) already divided by the temperature; None skips a filter."""
    out = logits if top_k is None else top_k_filter(logits, top_k)
    return out if top_p is None else top_p_filter(out, top_p)
