"""Likelihood metrics of the synthetic benchmark (Yu et al., 2017, Sec. 5, Eq. 14).

- NLL-oracle: the oracle's mean per-token NLL of sequences sampled from G: how plausible G's
  samples are under the true distribution (quality). The oracle's own samples score its entropy
  rate (about 5.75 nats on the paper's oracle): the floor.
- NLL-test: G's mean per-token NLL of held-out oracle samples (never the training set): how much
  of the true distribution G covers (diversity).
Both are per token, in nats. For a conditional run (`cond`, each sequence's condition) both are
conditional: G's samples for c are scored by p_oracle(. | c), held-out sequences by G(. | c).
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def mean_token_nll(
    model: nn.Module, tokens: torch.Tensor, batch_size: int = 1000, temperature: float = 1.0, cond: torch.Tensor | None = None
) -> float:
    """Mean per-token NLL of `tokens` (R, T) under `model` (a Generator or the oracle) at `temperature`,
    given each row's condition cond (R, ...) for a conditional model.

    With an end token, positions after it (padding) are left out; the end token itself counts."""
    total, count = token_nll_sum(model, tokens, batch_size, temperature, cond)
    return total / max(count, 1)


@torch.no_grad()
def token_nll_sum(
    model: nn.Module, tokens: torch.Tensor, batch_size: int = 1000, temperature: float = 1.0, cond: torch.Tensor | None = None
) -> tuple[float, int]:
    """(summed NLL, counted tokens) of `tokens` (R, T): what ranks add up to evaluate on shards."""
    total, count = 0.0, 0
    for chunk, logp in _chunked_log_probs(model, tokens, batch_size, temperature, cond):
        mask = model.mask(chunk)
        total -= float(logp.sum() if mask is None else (logp * mask).sum())
        count += chunk.numel() if mask is None else int(mask.sum())
    return total, count


@torch.no_grad()
def sequence_log_probs(
    model: nn.Module, tokens: torch.Tensor, cond: torch.Tensor | None = None, batch_size: int = 1000
) -> torch.Tensor:
    """log p(Y | c) of each whole sequence: tokens (R, T), cond (R, ...) -> (R,), padding left out."""
    out = []
    for chunk, logp in _chunked_log_probs(model, tokens, batch_size, 1.0, cond):
        mask = model.mask(chunk)
        out.append((logp if mask is None else logp * mask).sum(dim=1))
    return torch.cat(out) if out else tokens.new_zeros(0, dtype=torch.float)


def _chunked_log_probs(model: nn.Module, tokens: torch.Tensor, batch_size: int, temperature: float, cond: torch.Tensor | None):
    """(tokens chunk (b, T), its log-probs (b, T)) for chunks of `batch_size` rows."""
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i : i + batch_size]
        yield chunk, model.log_probs(chunk, temperature, cond=None if cond is None else cond[i : i + batch_size])


def nll_test(model: nn.Module, test_data: torch.Tensor, temperature: float = 1.0, cond: torch.Tensor | None = None) -> float:
    """NLL-test: the model's per-token NLL on held-out data (R, T) (given its conditions (R, ...)),
    its logits divided by `temperature`."""
    return mean_token_nll(model, test_data, temperature=temperature, cond=cond)
