"""Build models from their config sections (the only place configs meet model classes)."""

from __future__ import annotations

from torch import nn

from seqgan.config import DiscriminatorConfig, GeneratorConfig
from seqgan.models.discriminator import CNNDiscriminator, RNNDiscriminator
from seqgan.models.generator import Generator


def build_generator(
    cfg: GeneratorConfig, vocab_size: int, start_token: int = 0, eos_token: int | None = None, pad_token: int = 0
) -> Generator:
    return Generator(
        vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, cfg.cell, start_token, cfg.init_std, eos_token, pad_token,
        cfg.noise_dim, cfg.attention,
    )  # fmt: skip


def build_discriminator(cfg: DiscriminatorConfig, vocab_size: int) -> nn.Module:
    if cfg.kind == "cnn":
        return CNNDiscriminator(vocab_size, cfg.embed_dim, cfg.filter_sizes, cfg.num_filters, cfg.dropout)
    return RNNDiscriminator(
        vocab_size, cfg.embed_dim, cfg.rnn_hidden, cfg.rnn_cell, cfg.bidirectional, cfg.dropout, cfg.rnn_pooling,
        cfg.attention_heads,
    )  # fmt: skip
