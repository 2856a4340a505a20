"""Condition encoders of the conditional SeqGAN: a condition c per sequence -> a vector (rows, dim).

A conditional SeqGAN (Mirza and Osindero, 2014, applied to SeqGAN) learns p(y | c): G, its rollout
policy and D each read c through an encoder of their own. G maps the vector to its initial state
(and, optionally, joins it to each step's input); D joins it to its pooled features, so D judges
(y, c) pairs. A raw condition is whatever the data holds for a sequence, one row per sequence:

- `LabelEncoder`: one or more categorical label fields, c (rows, fields) int64 of label ids; each
  field has its own embedding, and the embeddings are concatenated;
- `FeatureEncoder`: a dense feature vector per sequence (e.g. image features, the cross-modal
  case), c (rows, feature_dim) float, through a learned linear projection.

Every encoder maps c (rows, ...) to (rows, dim) and has `dim`: that is the whole interface G and D
rely on. Rollouts and D's negatives keep each sequence's raw c next to its tokens, repeating rows
where the tokens are repeated (`repeat_rows`). A seq2seq condition (a source token sequence read by
an encoder RNN) would be one more encoder of the same shape: c (rows, S) ids -> (rows, dim).
"""

from __future__ import annotations

import torch
from torch import nn


class LabelEncoder(nn.Module):
    """Label fields -> the concatenation of one embedding per field: c (rows, F) int64 -> (rows, F * embed_dim)."""

    def __init__(self, num_classes: list[int], embed_dim: int) -> None:
        super().__init__()
        if not num_classes or min(num_classes) < 1:
            raise ValueError(f"num_classes must list at least one field of >= 1 classes, got {num_classes}")
        self.num_classes = list(num_classes)
        self.embeddings = nn.ModuleList(nn.Embedding(k, embed_dim) for k in num_classes)
        self.dim = embed_dim * len(num_classes)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.shape[1] != len(self.embeddings) or cond.dtype != torch.long:
            raise ValueError(
                f"label conditions must be (rows, {len(self.embeddings)}) int64 label ids, got {tuple(cond.shape)} {cond.dtype}"
            )
        return torch.cat([emb(cond[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)


class FeatureEncoder(nn.Module):
    """A feature vector per sequence -> a learned linear projection: c (rows, feature_dim) -> (rows, dim)."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.proj = nn.Linear(feature_dim, dim)
        self.dim = dim

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.feature_dim or not cond.is_floating_point():
            raise ValueError(
                f"feature conditions must be (rows, {self.feature_dim}) floats, got {tuple(cond.shape)} {cond.dtype}"
            )
        return self.proj(cond)


def pick_rows(pool: torch.Tensor | None, num: int, rng: torch.Generator) -> torch.Tensor | None:
    """`num` rows of `pool` (R, ...), e.g. a data set's conditions, drawn uniformly with replacement
    from `rng`: the conditions G is asked to generate for. None (nothing drawn) without a pool."""
    return None if pool is None else pool[pick_index(pool, num, rng)]


def pick_index(pool: torch.Tensor, num: int, rng: torch.Generator) -> torch.Tensor:
    """The row numbers (num,) that `pick_rows` takes, on `pool`'s device."""
    return torch.randint(len(pool), (num,), generator=rng, device=rng.device).to(pool.device)


def repeat_rows(cond: torch.Tensor | None, times: int) -> torch.Tensor | None:
    """c (B, ...) -> (times * B, ...) with row r holding c[r % B]: the condition of each row of
    `times` stacked copies of a batch, e.g. rollouts laid out (t, n, b)."""
    if cond is None:
        return None
    return cond.repeat(times, *([1] * (cond.dim() - 1)))
