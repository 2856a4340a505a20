"""Discriminators D: score whole sequences as real (from the data) or generated.

`CNNDiscriminator` is the paper's (Yu et al., 2017, Sec. 4; Kim, 2014): token embedding, one
1-d convolution per window width with ReLU and max-over-time pooling, one highway layer, dropout,
and a 2-way output layer (class 1 = real). `RNNDiscriminator` reads the sequence with a
(bidirectional) GRU or LSTM and classifies its final states.

Both return logits (B, 2); `prob_real` is the reward signal D(Y) = P(real | Y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Highway(nn.Module):
    """One highway layer (Srivastava et al., 2015), as in the paper's code with gate bias 0:
    t = sigmoid(W_t x + b_t);  y = t * relu(W_h x + b_h) + (1 - t) * x."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1.0 - t) * x


class CNNDiscriminator(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        filter_sizes: list[int],
        num_filters: list[int],
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, w) for w, n in zip(filter_sizes, num_filters, strict=False))
        total = sum(num_filters)
        self.highway = Highway(total)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(total, 2)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> pooled features (B, sum(num_filters))."""
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, T): Conv1d wants channels first
        pooled = [conv(x).relu_().amax(dim=-1) for conv in self.convs]  # each (B, n_w)
        return self.highway(torch.cat(pooled, dim=1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> logits (B, 2), class 1 = real."""
        return self.out(self.dropout(self.features(tokens)))


class RNNDiscriminator(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(embed_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim * (2 if bidirectional else 1), 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> logits (B, 2): the last layer's final state of each direction."""
        _, state = self.rnn(self.embedding(tokens))
        h = state[0] if isinstance(state, tuple) else state  # (directions, B, H)
        return self.out(self.dropout(torch.cat(list(h), dim=1)))


@torch.no_grad()
def prob_real(discriminator: nn.Module, tokens: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """D(Y) = P(real | Y) for many sequences, in chunks: tokens (R, T) -> (R,).

    The caller puts D in eval mode (no dropout), as the paper's code does when scoring rewards.
    """
    out = [torch.softmax(discriminator(tokens[i : i + batch_size]), dim=-1)[:, 1] for i in range(0, len(tokens), batch_size)]
    return torch.cat(out) if out else tokens.new_zeros(0, dtype=torch.float)
