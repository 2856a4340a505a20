"""A token embedding that is part pre-trained, ScratchGAN-style (de Masson d'Autume et al., 2019).

Each token's vector is [its pre-trained vector (frozen); a trainable part], projected to the model's
embedding size by a trainable matrix:

    e(v) = W [u_v; t_v],    u (V, P) fixed, t (V, E) trained, W (E, P + E) trained.

It stands in for `nn.Embedding(V, E)`: called on ids it embeds them, and `weight` is the whole
(V, E) table (for relaxed one-hot inputs, vectors @ weight, and D's lookup tables), so every model
here that embeds through an attribute `embedding` can take it (`use_word_vectors`).
"""

from __future__ import annotations

import torch
from torch import nn


class PretrainedEmbedding(nn.Module):
    def __init__(self, vectors: torch.Tensor, embed_dim: int) -> None:
        """vectors (V, P): the pre-trained part, kept with the model (a buffer) but never trained."""
        super().__init__()
        self.register_buffer("vectors", vectors.detach().clone().float())
        std = vectors.std().item() if vectors.numel() > 1 else 1.0
        self.trainable = nn.Parameter(torch.randn(vectors.shape[0], embed_dim) * std)  # ScratchGAN: N(0, std of GloVe)
        self.project = nn.Linear(vectors.shape[1] + embed_dim, embed_dim, bias=False)

    @property
    def num_embeddings(self) -> int:
        return self.vectors.shape[0]

    @property
    def embedding_dim(self) -> int:
        return self.trainable.shape[1]

    @property
    def weight(self) -> torch.Tensor:
        """The whole table (V, E)."""
        return self.project(torch.cat([self.vectors, self.trainable], dim=1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """ids (...) -> (..., E), computed for these ids only."""
        return self.project(torch.cat([self.vectors[tokens], self.trainable[tokens]], dim=-1))


def use_word_vectors(model: nn.Module, vectors: torch.Tensor) -> nn.Module:
    """`model` with its `embedding` table (an `nn.Embedding` of V rows) replaced by a
    `PretrainedEmbedding` of the same size over `vectors` (V, P)."""
    table = getattr(model, "embedding", None)
    if not isinstance(table, nn.Embedding) or table.num_embeddings != vectors.shape[0]:
        raise ValueError(f"{type(model).__name__} has no embedding table of {vectors.shape[0]} tokens to replace")
    model.embedding = PretrainedEmbedding(vectors, table.embedding_dim).to(table.weight.device)
    return model
