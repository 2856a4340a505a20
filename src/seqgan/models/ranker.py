"""RankGAN's ranker (Lin et al., NIPS 2017, Sec. 3): a sentence encoder whose features are compared
by cosine similarity (`seqgan.rl.ranking`: the rank score and the ranker's loss) instead of classified real or fake.

Its features are those of the paper's CNN discriminator (token embedding, one convolution per
window width with max-over-time pooling and ReLU, one highway layer, then dropout), as in the
authors' code (cookielee77/RankGan-NIPS2017, ranker.py): `CNNDiscriminator.features`, with its
fast table lookups for scoring without gradients. The CNN's 2-way output layer is removed: a
ranker has no real/fake decision, and a parameter that never receives a gradient would stall
DistributedDataParallel and fill checkpoints with dead weights.
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.discriminator import CNNDiscriminator


class Ranker(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        filter_sizes: list[int],
        num_filters: list[int],
        dropout: float = 0.25,
        fused_conv: str = "auto",
    ) -> None:
        super().__init__()
        self.cnn = CNNDiscriminator(vocab_size, embed_dim, filter_sizes, num_filters, dropout=dropout, fused_conv=fused_conv)
        del self.cnn.out  # features only (see the module docstring)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> features e(y) (B, F), F = sum(num_filters)."""
        return self.dropout(self.cnn.features(tokens))

    @torch.no_grad()
    def embed(self, tokens: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Features of many sequences, in chunks, without gradients (the caller sets eval mode): (R, T) -> (R, F)."""
        return torch.cat([self(tokens[i : i + batch_size]) for i in range(0, len(tokens), batch_size)])

    def features(self, *parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The features of several token tensors (each (R_i, T)) from one forward pass (one DDP
        call when training under torchrun): -> (R_i, F) each."""
        return self(torch.cat(parts)).split([len(p) for p in parts])
