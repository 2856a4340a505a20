"""Likelihood metrics of the synthetic benchmark (Yu et al., 2017, Sec. 5, Eq. 14).

- NLL-oracle: the oracle's mean per-token NLL of sequences sampled from G: how plausible G's
  samples are under the true distribution (quality). The oracle's own samples score its entropy
  rate (about 5.75 nats on the paper's oracle): the floor.
- NLL-test: G's mean per-token NLL of held-out oracle samples (never the training set): how much
  of the true distribution G covers (diversity).
Both are per token, in nats.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def mean_token_nll(model: nn.Module, tokens: torch.Tensor, batch_size: int = 1000, temperature: float = 1.0) -> float:
    """Mean per-token NLL of `tokens` (R, T) under `model` (a Generator or the oracle) at `temperature`.

    With an end token, positions after it (padding) are left out; the end token itself counts."""
    total, count = token_nll_sum(model, tokens, batch_size, temperature)
    return total / max(count, 1)


@torch.no_grad()
def token_nll_sum(model: nn.Module, tokens: torch.Tensor, batch_size: int = 1000, temperature: float = 1.0) -> tuple[float, int]:
    """(summed NLL, counted tokens) of `tokens` (R, T): what ranks add up to evaluate on shards."""
    total, count = 0.0, 0
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i : i + batch_size]
        logp = model.log_probs(chunk, temperature)
        mask = model.mask(chunk)
        total -= float(logp.sum() if mask is None else (logp * mask).sum())
        count += chunk.numel() if mask is None else int(mask.sum())
    return total, count


@torch.no_grad()
def nll_oracle(
    oracle: nn.Module,
    model: nn.Module,
    num_samples: int,
    seq_len: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    batch_size: int = 1000,
) -> float:
    """NLL-oracle of `num_samples` sequences drawn from `model` at `temperature`."""
    samples = model.sample(num_samples, seq_len, generator, temperature, batch_size)
    return mean_token_nll(oracle, samples)


def nll_test(model: nn.Module, test_data: torch.Tensor, temperature: float = 1.0) -> float:
    """NLL-test: the model's per-token NLL on held-out data (R, T), its logits divided by `temperature`."""
    return mean_token_nll(model, test_data, temperature=temperature)
