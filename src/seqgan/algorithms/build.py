"""Build models from their config sections (the only place configs meet model classes): models
take plain arguments and never read the config."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seqgan.config import ConditionConfig, ConfigError, DiscriminatorConfig, ExperimentConfig, GeneratorConfig
from seqgan.data.conditions import ConditionSpace
from seqgan.data.dataset import Data
from seqgan.models.condition import FeatureEncoder, LabelEncoder, SourceEncoder, pick_rows
from seqgan.models.discriminator import CNNDiscriminator, Discriminator, MultiRepCNNDiscriminator, RNNDiscriminator
from seqgan.models.embedding import use_word_vectors
from seqgan.models.generator import Generator
from seqgan.models.judge import GenerativeJudge, JudgedDiscriminator
from seqgan.models.relational_memory import RelationalGenerator


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
    *,
    start_token: int = 0,
    eos_token: int | None = None,
    pad_token: int = 0,
    condition: ConditionConfig | None = None,
    space: ConditionSpace | None = None,
) -> Generator:
    if cfg.cell == "rmc":
        return RelationalGenerator(
            vocab_size,
            cfg.embed_dim,
            mem_slots=cfg.mem_slots,
            num_heads=cfg.num_heads,
            head_size=cfg.head_size,
            start_token=start_token,
            init_std=cfg.init_std,
            eos_token=eos_token,
            pad_token=pad_token,
        )
    encoder = None if condition is None else build_condition_encoder(condition, space, vocab_size)
    return Generator(
        vocab_size,
        cfg.embed_dim,
        cfg.hidden_dim,
        num_layers=cfg.num_layers,
        cell=cfg.cell,
        start_token=start_token,
        init_std=cfg.init_std,
        eos_token=eos_token,
        pad_token=pad_token,
        noise_dim=cfg.noise_dim,
        attention=cfg.attention,
        tie_embeddings=cfg.tie_embeddings,
        condition=encoder,
        condition_input=encoder is not None and condition.step_input,
        source_attention=encoder is not None and condition.attention,
    )


COMPUTE_DTYPES = {None: None, "fp32": torch.float32, "bf16": torch.bfloat16}  # discriminator.precision


def build_discriminator(
    cfg: DiscriminatorConfig, vocab_size: int, condition: ConditionConfig | None = None, space: ConditionSpace | None = None
) -> Discriminator:
    d = _discriminator(cfg, vocab_size, condition, space)
    d.compute_dtype = COMPUTE_DTYPES[cfg.precision]
    return d


def _discriminator(
    cfg: DiscriminatorConfig, vocab_size: int, condition: ConditionConfig | None, space: ConditionSpace | None
) -> Discriminator:
    if cfg.kind == "cnn" and cfg.num_rep > 1:
        return MultiRepCNNDiscriminator(vocab_size, cfg.embed_dim, cfg.num_rep, cfg.filter_sizes, cfg.num_filters, cfg.dropout)
    encoder = None if condition is None else build_condition_encoder(condition, space, vocab_size)
    if cfg.kind == "cnn":
        return CNNDiscriminator(
            vocab_size,
            cfg.embed_dim,
            cfg.filter_sizes,
            cfg.num_filters,
            dropout=cfg.dropout,
            condition=encoder,
            condition_join=cfg.condition_join,
            fused_conv=cfg.fused_conv,
            fused_groups=cfg.fused_groups,
            causal=cfg.causal,
        )
    return RNNDiscriminator(
        vocab_size,
        cfg.embed_dim,
        cfg.rnn_hidden,
        cell=cfg.rnn_cell,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        pooling=cfg.rnn_pooling,
        attention_heads=cfg.attention_heads,
        condition=encoder,
        condition_join=cfg.condition_join,
        embedding_dropout=cfg.embedding_dropout,
        position_dim=cfg.position_dim,
    )


OWN_GENERATORS: dict[str, Callable[[ExperimentConfig, Data], Generator]] = {}
"""Builders of the algorithms whose G is a model of their own (LeakGAN's, which reads D), by
algorithm name: `make_generator` builds theirs, for training and for a reopened run alike."""


def make_generator(cfg: ExperimentConfig, data: Data) -> Generator:
    """The run's G; with data.word_vectors, embedding through them (`use_word_vectors`)."""
    own = OWN_GENERATORS.get(cfg.algorithm)
    if own is not None:
        return with_word_vectors(own(cfg, data), data)
    generator = build_generator(
        cfg.generator,
        data.vocab_size,
        start_token=data.start_token,
        eos_token=data.eos_token,
        pad_token=data.pad_token,
        condition=cfg.condition,
        space=data.condition,
    )
    return with_word_vectors(generator, data)


def with_word_vectors(model: nn.Module, data: Data) -> nn.Module:
    return model if data.word_vectors is None else use_word_vectors(model, data.word_vectors.cpu())


def make_discriminator(cfg: ExperimentConfig, data: Data) -> Discriminator:
    """The run's D; with discriminator.condition_judge=generator an unconditional D joined to a
    `GenerativeJudge` of G's shape (its weights set from G when D pre-training starts)."""
    d = cfg.discriminator
    if d.condition_judge == "head":
        discriminator = with_word_vectors(build_discriminator(d, data.vocab_size, cfg.condition, data.condition), data)
        set_reference(discriminator, data.cond_train, cfg.seed)
        return discriminator
    space = data.condition
    if space.kind == "label" and len(space.fields) != 1:
        raise ConfigError(
            f"discriminator.condition_judge=generator scores one label field, this data has {len(space.fields)} "
            f"({', '.join(space.fields)}); keep one (condition.label_fields) or use condition_judge=head"
        )
    labels = space.kind == "label"
    judge = GenerativeJudge(
        make_generator(cfg, data),
        num_classes=space.num_classes[0] if labels else None,
        feature_dim=None if labels else space.feature_dim,
        num_reference=d.judge_references,
    )
    discriminator = JudgedDiscriminator(with_word_vectors(build_discriminator(d, data.vocab_size), data), judge)
    set_reference(discriminator, data.cond_train, cfg.seed)
    return discriminator


def set_reference(discriminator: Discriminator, pool: torch.Tensor | None, seed: int) -> None:
    """A condition head that scores c against reference vectors gets them now: rows of the training
    data's conditions `pool` (R, F), drawn with their own seed (the same on every rank)."""
    head = discriminator.classifier
    if head is None or head.reference is None:
        return
    rng = torch.Generator(pool.device).manual_seed(seed + 2)
    head.set_reference(pick_rows(pool, len(head.reference), rng))
