"""Build models from their config sections (the only place configs meet model classes)."""

from __future__ import annotations

from torch import nn

from seqgan.config import ConditionConfig, DiscriminatorConfig, GeneratorConfig
from seqgan.data.conditions import ConditionSpace
from seqgan.models.condition import FeatureEncoder, LabelEncoder, SourceEncoder
from seqgan.models.discriminator import CNNDiscriminator, RNNDiscriminator
from seqgan.models.generator import Generator


def build_condition_encoder(cfg: ConditionConfig, space: ConditionSpace | None, vocab_size: int) -> nn.Module | None:
    """A fresh encoder of the run's conditions (G and D each build their own), or None when
    unconditional; a source encoder reads ids of the run's one vocabulary (`vocab_size`)."""
    if space is None:
        return None
    if space.kind == "label":
        return LabelEncoder(space.num_classes, cfg.embed_dim)
    if space.kind == "source":
        return SourceEncoder(vocab_size, cfg.embed_dim, cfg.encoder_hidden, cfg.encoder_cell, cfg.bidirectional)
    return FeatureEncoder(space.feature_dim, cfg.proj_dim)


def build_generator(
    cfg: GeneratorConfig,
    vocab_size: int,
    start_token: int = 0,
    eos_token: int | None = None,
    pad_token: int = 0,
    condition: ConditionConfig | None = None,
    space: ConditionSpace | None = None,
) -> Generator:
    encoder = None if condition is None else build_condition_encoder(condition, space, vocab_size)
    return Generator(
        vocab_size, cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, cfg.cell, start_token, cfg.init_std, eos_token, pad_token,
        cfg.noise_dim, cfg.attention, encoder, encoder is not None and condition.step_input,
        encoder is not None and condition.attention,
    )  # fmt: skip


def build_discriminator(
    cfg: DiscriminatorConfig, vocab_size: int, condition: ConditionConfig | None = None, space: ConditionSpace | None = None
) -> nn.Module:
    encoder = None if condition is None else build_condition_encoder(condition, space, vocab_size)
    if cfg.kind == "cnn":
        return CNNDiscriminator(
            vocab_size, cfg.embed_dim, cfg.filter_sizes, cfg.num_filters, cfg.dropout, encoder, cfg.condition_join
        )
    return RNNDiscriminator(
        vocab_size, cfg.embed_dim, cfg.rnn_hidden, cfg.rnn_cell, cfg.bidirectional, cfg.dropout, cfg.rnn_pooling,
        cfg.attention_heads, encoder, cfg.condition_join,
    )  # fmt: skip
