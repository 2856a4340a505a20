"""Typed experiment configuration: one dataclass per component, composed into `ExperimentConfig`.

Configs are loaded from YAML (safe-load only) and patched with `section.key=value` overrides from
the command line. Every field is type-checked and every section validates itself in
`__post_init__`, with messages that say how to fix the setting. Unknown keys are errors that
suggest the closest known key: no setting is ever silently ignored.

Models never import this module; the training code passes plain arguments to them.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqgan.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_default(section: Any, name: str) -> bool:
    spec = type(section).__dataclass_fields__[name]
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    return getattr(section, name) == default


PAPER_FILTER_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
PAPER_NUM_FILTERS = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]


ORACLE_FIELDS = tuple(
    "oracle oracle_path oracle_seed vocab_size embed_dim hidden_dim seq_len num_train num_test train_seed test_seed num_valid valid_seed".split()
)
TEXT_FIELDS = tuple(
    "train valid test text_field tokenizer word_split drop_spaces lowercase max_vocab max_len overflow heldout_size heldout_share heldout_seed word_vectors".split()
)


@dataclass
class DataConfig:
    """Where sequences come from: `oracle` (the paper's synthetic benchmark) or `text` (a corpus file)."""

    source: str = "oracle"
    """'oracle' (synthetic, fixed length) or 'text' (one sequence a line in data.train)."""
    oracle: str = "random"
    """'random': a seeded oracle LSTM with N(0,1) parameters made here; 'paper': the paper's weights."""
    oracle_path: str = "../shared/data/seqgan_oracle/target_params.npz"
    """The paper's oracle weights (.npz); read only when oracle='paper'. Relative to the working dir."""
    oracle_seed: int = 0
    """Seed of the random oracle's parameters."""
    vocab_size: int = 5000
    embed_dim: int = 32
    hidden_dim: int = 32
    seq_len: int = 20
    num_train: int = 10_000
    """Oracle samples used as the real training data."""
    num_test: int = 10_000
    """Held-out oracle samples, drawn with another seed, for NLL-test."""
    train_seed: int = 1
    test_seed: int = 2
    num_valid: int = 0
    """Oracle: validation samples (another seed) for nll_valid and early stopping (pretrain.patience); 0: none."""
    valid_seed: int = 3
    train: str = ""
    """Text: the training corpus, .txt (one sequence a line, UTF-8) or .jsonl."""
    valid: str = ""
    """Text, optional: a validation corpus (its NLL is logged as nll_valid)."""
    test: str = ""
    """Text, optional: the test corpus (BLEU references, NLL-test); without it the held-out part of train is the test set."""
    text_field: str = "text"
    """Text, .jsonl only: the field holding the text."""
    tokenizer: str = "word"
    """Text: 'word' (whitespace), 'char' (any script, no spaces needed) or 'bpe' (HF tokenizers, trained on data.train)."""
    word_split: str = "whitespace"
    """Text, word tokenizer: 'whitespace', or 'nltk' (NLTK's Treebank word tokenizer: punctuation and
    clitics split off, "night." -> "night ."; the Texygen benchmark's tokenisation). BLEU counts these words."""
    drop_spaces: bool = False
    """Text, char tokenizer: leave whitespace out of the tokens, for corpora that separate characters
    by spaces (the poems: "床 前 明 月 光" is 5 tokens, not 9); samples then have no spaces."""
    lowercase: bool = False
    max_vocab: int = 0
    """Text: vocabulary size limit including 4 special tokens (0: every word / character; bpe needs a limit)."""
    max_len: int = 40
    """Text: the most tokens a sequence may have (an end token follows)."""
    overflow: str = "truncate"
    """Text: 'truncate' or 'drop' lines longer than max_len (counted and reported in data_report.json)."""
    heldout_size: int = 0
    """Text: lines of data.train held out (never trained on) for BLEU against train-like text;
    0: data.heldout_share of them, at most 1,000, so that a small corpus trains on most of its lines."""
    heldout_share: float = 0.05
    """Text, with data.heldout_size 0: the share of data.train's lines held out (at least 1, at most 1,000)."""
    heldout_seed: int = 3
    word_vectors: str = ""
    """Text, word or char tokenizer, optional: a file of pre-trained vectors (GloVe's text format, or
    word2vec's text format): G and D embed each token as [its vector, frozen; a trainable part]
    projected to their embed_dim, as ScratchGAN does with GloVe (`seqgan.models.embedding`). Tokens
    the file lacks get random vectors of the same spread; `train` prints how many were found. The
    vectors are saved in the run folder, so sample and evaluate do not need the file again."""

    @property
    def length(self) -> int:
        """Tokens per sequence tensor row: seq_len for the oracle, max_len + 1 (the end token) for text."""
        return self.seq_len if self.source == "oracle" else self.max_len + 1

    def __post_init__(self) -> None:
        _check(self.source in ("oracle", "text"), f"data.source={self.source!r}: use 'oracle' or 'text'")
        own, other = (ORACLE_FIELDS, TEXT_FIELDS) if self.source == "oracle" else (TEXT_FIELDS, ORACLE_FIELDS)
        defaults = DataConfig.__dataclass_fields__
        for name in other:
            _check(
                getattr(self, name) == defaults[name].default,
                f"data.{name} does not apply to data.source={self.source!r}; remove it (or set data.source)",
            )
        if self.source == "text":
            _check(bool(self.train), "data.train: give the training corpus, e.g. data.train=my.txt")
            _check(self.tokenizer in ("word", "char", "bpe"), f"data.tokenizer={self.tokenizer!r}: use 'word', 'char' or 'bpe'")
            _check(
                self.max_vocab == 0 or self.max_vocab >= 5, "data.max_vocab must be 0 (no limit) or >= 5 (4 special tokens + 1)"
            )
            _check(self.tokenizer != "bpe" or self.max_vocab > 0, "data.tokenizer=bpe needs data.max_vocab, e.g. 8000")
            _check(self.word_split in ("whitespace", "nltk"), f"data.word_split={self.word_split!r}: use 'whitespace' or 'nltk'")
            _check(
                self.tokenizer == "word" or self.word_split == "whitespace",
                f"data.word_split applies to data.tokenizer=word only ({self.tokenizer} splits its own way); remove it",
            )
            _check(self.max_len >= 1, "data.max_len must be >= 1")
            _check(self.overflow in ("truncate", "drop"), "data.overflow must be 'truncate' or 'drop'")
            _check(
                self.tokenizer == "char" or not self.drop_spaces,
                f"data.drop_spaces applies to data.tokenizer=char only ({self.tokenizer} tokens hold no spaces); remove it",
            )
            _check(
                not self.word_vectors or self.tokenizer in ("word", "char"),
                "data.word_vectors needs data.tokenizer=word or char (vectors are looked up by token); remove it or change the tokenizer",
            )
            self._check_heldout()
            return
        _check(
            self.oracle in ("random", "paper"),
            f"data.oracle={self.oracle!r}: use 'random' (built-in) or 'paper' (weights from data.oracle_path)",
        )
        for name in ("vocab_size", "embed_dim", "hidden_dim", "seq_len", "num_train", "num_test"):
            _check(getattr(self, name) >= 1, f"data.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.vocab_size >= 2, "data.vocab_size must be >= 2")
        _check(self.seq_len >= 2, "data.seq_len must be >= 2 (rollouts need at least one prefix)")
        _check(self.train_seed != self.test_seed, "data.train_seed and data.test_seed must differ")
        _check(self.num_valid >= 0, "data.num_valid must be >= 0 (0: no validation set)")
        if self.num_valid > 0:
            _check(
                self.valid_seed not in (self.train_seed, self.test_seed),
                "data.valid_seed must differ from data.train_seed and data.test_seed",
            )
        else:
            _check(self.valid_seed == DataConfig.valid_seed, "data.valid_seed applies only with data.num_valid > 0; remove it")
        if self.oracle == "paper":
            _check(
                (self.vocab_size, self.embed_dim, self.hidden_dim) == (5000, 32, 32),
                "data.oracle='paper' has vocab_size 5000, embed_dim 32, hidden_dim 32: remove the overrides",
            )

    def _check_heldout(self) -> None:
        _check(
            self.heldout_size >= 0,
            f"data.heldout_size={self.heldout_size}: give a line count >= 1, or 0 for data.heldout_share of the lines",
        )
        _check(
            0.0 < self.heldout_share < 1.0,
            f"data.heldout_share={self.heldout_share}: give a share between 0 and 1, e.g. 0.05 (5% of the lines)",
        )
        _check(
            self.heldout_size == 0 or self.heldout_share == DataConfig.heldout_share,
            "data.heldout_size and data.heldout_share both set: keep one (a line count, or a share of the lines)",
        )


CONDITION_KINDS = ("none", "label", "features", "source")
ORACLE_CONDITION_FIELDS = ("num_classes", "feature_dim", "candidates")
TEXT_CONDITION_FIELDS = ("label_fields", "features", "valid_features", "test_features")
LABEL_FIELDS = ("num_classes", "label_fields", "embed_dim")
FEATURE_FIELDS = ("feature_dim", "candidates", "features", "valid_features", "test_features", "proj_dim")
SOURCE_FIELDS = tuple("source_field max_source_len embed_dim encoder_cell encoder_hidden bidirectional attention".split())


@dataclass
class ConditionConfig:
    """Conditional SeqGAN: G learns p(y | c) and D judges (y, c) pairs; 'none' is the plain SeqGAN.

    Oracle data: a conditional oracle whose condition sets its initial state (`seqgan.models.oracle`).
    Text data: label fields of JSON Lines records, a features file with one row per sequence, or a
    source sequence per JSON Lines record (seq2seq)."""

    kind: str = "none"
    """'none', 'label' (categorical label fields), 'features' (a dense vector per sequence) or 'source' (a token sequence, text only)."""
    num_classes: int = 4
    """Oracle, kind=label: K classes, each with its own initial state of the oracle."""
    feature_dim: int = 8
    """Oracle, kind=features: F, the size of the N(0, I) feature vector drawn per sequence."""
    candidates: int = 4
    """Oracle, kind=features: condition accuracy picks the asked-for vector among this many (it and others of the held-out set)."""
    label_fields: list[str] = field(default_factory=list)
    """Text, kind=label: the JSONL fields holding labels (every line of every corpus file needs them)."""
    features: str = ""
    """Text, kind=features: a .npy or .safetensors file, one row per sequence (non-blank line) of data.train."""
    valid_features: str = ""
    """Text, kind=features: the rows for data.valid (needed exactly when data.valid is set)."""
    test_features: str = ""
    """Text, kind=features: the rows for data.test (needed exactly when data.test is set)."""
    embed_dim: int = 16
    """kind=label: embedding size of each label field; kind=source: of the source tokens (G and D each have their own)."""
    proj_dim: int = 16
    """kind=features: output size of the learned projection of the features (G and D each have their own)."""
    source_field: str = "source"
    """kind=source: the JSONL field holding each line's source text (tokenized by data.tokenizer; one vocabulary for both sides)."""
    max_source_len: int = 40
    """kind=source: the most source tokens; longer sources are truncated or dropped as data.overflow says (counted)."""
    encoder_cell: str = "gru"
    """kind=source: 'gru' or 'lstm', the RNN reading the source (G and D each have their own)."""
    encoder_hidden: int = 32
    """kind=source: hidden size per direction of the source RNN."""
    bidirectional: bool = True
    """kind=source: read the source in both directions."""
    attention: bool = False
    """kind=source: G attends over the source RNN's outputs at every step (one head, Luong's general score)."""
    step_input: bool = False
    """Also join the encoded condition to every input step of G (not only its initial state)."""

    def __post_init__(self) -> None:
        _check(self.kind in CONDITION_KINDS, f"condition.kind={self.kind!r}: use 'none', 'label', 'features' or 'source'")
        own = {"none": (), "label": LABEL_FIELDS, "features": FEATURE_FIELDS, "source": SOURCE_FIELDS}[self.kind]
        shared = () if self.kind == "none" else ("step_input",)
        for name in (f.name for f in dataclasses.fields(self) if f.name not in ("kind", *own, *shared)):
            _check(
                _is_default(self, name),
                f"condition.{name} does not apply to condition.kind={self.kind!r}; remove it (or set condition.kind)",
            )
        for name in ("feature_dim", "embed_dim", "proj_dim", "max_source_len", "encoder_hidden"):
            _check(getattr(self, name) >= 1, f"condition.{name} must be >= 1")
        _check(self.encoder_cell in ("gru", "lstm"), f"condition.encoder_cell={self.encoder_cell!r}: use 'gru' or 'lstm'")
        _check(bool(self.source_field.strip()), "condition.source_field must name a JSONL field, e.g. source")
        _check(self.num_classes >= 2, "condition.num_classes must be >= 2 (one class conditions on nothing)")
        _check(self.candidates >= 2, "condition.candidates must be >= 2 (the asked-for vector and at least one other)")
        _check(
            len(set(self.label_fields)) == len(self.label_fields), f"condition.label_fields {self.label_fields} repeats a field"
        )


RNN_FIELDS = ("num_layers", "hidden_dim", "noise_dim", "attention", "tie_embeddings")
RMC_FIELDS = ("mem_slots", "num_heads", "head_size")


@dataclass
class GeneratorConfig:
    """The generator G: a recurrent language model (the paper: LSTM, 32/32, N(0, 0.1^2) init)."""

    cell: str = "lstm"
    """'lstm', 'gru', or 'rmc': RelGAN's relational memory core (Santoro et al. 2018; mem_slots, num_heads, head_size)."""
    num_layers: int = 1
    embed_dim: int = 32
    hidden_dim: int = 32
    init_std: float = 0.1
    """Std of the normal initialisation of every parameter (the paper's code); 0 keeps PyTorch's."""
    noise_dim: int = 0
    """Size of a latent z ~ N(0, I) per sequence mapped (linear + tanh) to the initial state; 0: none (the paper)."""
    attention: bool = False
    """Causal self-attention over G's earlier top-layer outputs, its read-out joined to each step's output."""
    tie_embeddings: bool = False
    """Score each step's output against the input embedding table (ScratchGAN's G): logits = (o P^T) E^T + b,
    E G's embedding (V, embed_dim), P a learnt projection; false: a separate output layer (the paper)."""
    mem_slots: int = 1
    """cell=rmc only: N, the memory's slots (RelGAN: 1)."""
    num_heads: int = 2
    """cell=rmc only: attention heads over the slots (RelGAN: 2)."""
    head_size: int = 256
    """cell=rmc only: each head's size; a slot holds num_heads * head_size numbers (RelGAN: 256)."""

    def __post_init__(self) -> None:
        _check(self.cell in ("lstm", "gru", "rmc"), f"generator.cell={self.cell!r}: use 'lstm', 'gru' or 'rmc'")
        own, other = (RMC_FIELDS, RNN_FIELDS) if self.cell == "rmc" else (RNN_FIELDS, RMC_FIELDS)
        for name in other:
            _check(
                _is_default(self, name),
                f"generator.{name} does not apply to generator.cell={self.cell}; remove it (or set generator.cell)",
            )
        for name in ("mem_slots", "num_heads", "head_size"):
            _check(getattr(self, name) >= 1, f"generator.{name} must be >= 1")
        _check(self.noise_dim >= 0, "generator.noise_dim must be >= 0 (0: no noise input)")
        for name in ("num_layers", "embed_dim", "hidden_dim"):
            _check(getattr(self, name) >= 1, f"generator.{name} must be >= 1")
        _check(self.init_std >= 0, "generator.init_std must be >= 0")


@dataclass
class DiscriminatorConfig:
    """The discriminator D (the paper: CNN with highway, dropout 0.25, L2 0.2, Adam 1e-4)."""

    kind: str = "cnn"
    """'cnn' (the paper's) or 'rnn' (a bidirectional GRU/LSTM)."""
    embed_dim: int = 64
    filter_sizes: list[int] = field(default_factory=lambda: list(PAPER_FILTER_SIZES))
    """CNN only: convolution widths."""
    num_filters: list[int] = field(default_factory=lambda: list(PAPER_NUM_FILTERS))
    """CNN only: filters per width."""
    num_rep: int = 1
    """CNN only: RelGAN's multiple embedded representations: embed_dim split into num_rep slices, each read
    by the same convolutions and scored on its own (RelGAN: embed_dim 64, num_rep 64); 1: the paper's D."""
    fused_conv: str | bool = "auto"
    """CNN only: run all widths as one zero-padded convolution ('on'), one convolution per width
    ('off'), or 'auto': fused on CUDA, where one launch beats twelve small ones, per width on the
    CPU, where the padding's extra arithmetic costs more (bench/adversarial_step.py measures both).
    YAML's unquoted on / off (true / false) mean 'on' / 'off'."""
    fused_groups: int = 1
    """CNN, fused convolution only: into how many zero-padded convolutions the widths are split, runs
    of consecutive widths chosen for the fewest multiply-adds (`padded_groups`): 1, one convolution as
    wide as the widest width (5.8x the multiply-adds of the paper D's 12 convolutions); 3, widths 1-5,
    6-10 and 15-20 (1.7x); as many as there are widths, each alone. Fewer launches against less
    arithmetic: which is faster depends on the GPU (scripts/gpu_check.sh measures 1, 3 and 'off')."""
    precision: str | None = None
    """D's arithmetic, whatever the run's `precision`: None (the run's), 'bf16' (every D pass, its
    training steps and its scores of rollouts, under bfloat16 autocast, while G keeps the run's
    precision: bf16's speed where most of a SeqGAN run's time goes, without G's LSTM state in bf16,
    which is what costs `precision=bf16` its NLL; docs/performance.md) or 'fp32' (D without autocast
    in a bf16 run). D's outputs are float32 either way (`Discriminator.compute_dtype`)."""
    causal: bool = False
    """CNN only: left-pad every convolution (w - 1 zero vectors) and pool by a running max, so that D
    scores every prefix y_1..t in one pass (for adversarial.reward=prefix_d). Not the paper's D."""
    rnn_cell: str = "gru"
    """RNN only: 'gru' or 'lstm'."""
    rnn_hidden: int = 64
    """RNN only: hidden size per direction."""
    bidirectional: bool = True
    """RNN only."""
    rnn_pooling: str = "last"
    """RNN only: 'last' (classify the final states) or 'attention' (multi-head attention pooling over time steps)."""
    attention_heads: int = 1
    """RNN with rnn_pooling=attention only: heads of the pooling attention (must divide the RNN output size)."""
    dropout: float = 0.25
    embedding_dropout: float = 0.0
    """RNN only: dropout on the embedding table itself (each entry of the V x E matrix zeroed with this
    probability at every training pass; ScratchGAN's D: 0.1). 0: off."""
    position_dim: int = 0
    """RNN only: append ScratchGAN's fixed position signal (this many cosine waves of periods 2 to the
    sequence length, `seqgan.models.discriminator.position_signal`) to every step's input, so D
    knows where in the sequence a token is (ScratchGAN's D: 8). 0: off."""
    l2_reg: float = 0.2
    """L2 penalty on the output layer, as TF's l2_loss: l2_reg * sum(w^2) / 2."""
    lr: float = 1e-4
    batch_size: int = 64
    label_smoothing: float = 0.0
    """One-sided: the real label becomes 1 - label_smoothing; fake stays 0."""
    condition_join: str = "concat"
    """Conditional runs: how e(c) meets D's pooled features h. 'concat': [h; e(c)] before the CNN's
    highway layer (the RNN's output layer); 'projection': the real logit gains <W e(c), h> (the
    projection discriminator of Miyato & Koyama 2018); 'classifier' (labels or features): D reads y
    alone and an auxiliary head trained on real sequences scores c (AC-GAN, Odena et al. 2017): it
    predicts each label field, or for a feature vector scores c against 63 reference vectors of the
    training data (InfoNCE); D(y, c) = P(real | y) * P(c | y), so a sequence that fits another
    condition earns little."""
    condition_judge: str = "head"
    """condition_join=classifier: what scores P(c | y). 'head': an auxiliary head on D's features
    (the class head, or the feature-vector matcher). 'generator': a conditional language model of
    G's shape, copied from the pre-trained G when D pre-training starts and trained on real pairs
    as a Bayes classifier, P(c | y) = p(y | c) / sum_c' p(y | c') over every class (one label
    field) or over c and `judge_references` vectors (`seqgan.models.judge`); one LM pass per c'."""
    judge_references: int = 7
    """condition_judge=generator with feature vectors: the training data's vectors each c competes
    with in the reward (in training: as many other conditions of the batch). Each costs a pass of
    the judge over every scored sequence."""
    mismatched: float = 0.0
    """Conditional runs: each D round also shows real sequences with another sequence's condition as
    negatives, this many per generated negative (the matching-aware D of Reed et al. 2016, GAN-CLS),
    so D, and through its rewards G, learn whether y fits c. 0: off (the paper has no condition)."""

    def __post_init__(self) -> None:
        _check(self.kind in ("cnn", "rnn"), f"discriminator.kind={self.kind!r}: use 'cnn' or 'rnn'")
        self.fused_conv = on_off(self.fused_conv)
        _check(
            self.fused_conv in ("auto", "on", "off"), f"discriminator.fused_conv={self.fused_conv!r}: use 'auto', 'on' or 'off'"
        )
        _check(
            1 <= self.fused_groups <= max(1, len(self.filter_sizes)),
            f"discriminator.fused_groups={self.fused_groups}: use 1 to {len(self.filter_sizes)} (the number of filter_sizes)",
        )
        if self.fused_groups != 1:
            _check(
                self.fused_conv != "off",
                "discriminator.fused_groups applies to the fused convolution; remove it or set fused_conv",
            )
        _check(self.embed_dim >= 1, "discriminator.embed_dim must be >= 1")
        _check(self.num_rep >= 1, "discriminator.num_rep must be >= 1 (1: one embedded representation)")
        if self.num_rep > 1:
            _check(self.kind == "cnn", "discriminator.num_rep applies to kind=cnn only; remove it")
            _check(
                self.embed_dim % self.num_rep == 0,
                f"discriminator.embed_dim {self.embed_dim} must be a multiple of num_rep {self.num_rep} (each representation one slice)",
            )
            _check(
                self.fused_conv == "auto" and self.fused_groups == 1,
                "discriminator.fused_conv and fused_groups apply to num_rep=1 only; remove them",
            )
        _check(0.0 <= self.dropout < 1.0, "discriminator.dropout must be in [0, 1)")
        _check(0.0 <= self.embedding_dropout < 1.0, "discriminator.embedding_dropout must be in [0, 1)")
        if self.embedding_dropout > 0:
            _check(self.kind == "rnn", "discriminator.embedding_dropout applies to kind=rnn only; remove it")
        _check(self.l2_reg >= 0, "discriminator.l2_reg must be >= 0")
        _check(self.lr > 0, "discriminator.lr must be > 0")
        _check(self.batch_size >= 1, "discriminator.batch_size must be >= 1")
        _check(0.0 <= self.label_smoothing < 0.5, "discriminator.label_smoothing must be in [0, 0.5)")
        _check(self.mismatched >= 0, "discriminator.mismatched must be >= 0 (0: off)")
        _check(
            self.condition_join in ("concat", "projection", "classifier"),
            f"discriminator.condition_join={self.condition_join!r}: use 'concat', 'projection' or 'classifier'",
        )
        _check(
            self.condition_judge in ("head", "generator"),
            f"discriminator.condition_judge={self.condition_judge!r}: use 'head' or 'generator'",
        )
        _check(self.judge_references >= 1, "discriminator.judge_references must be >= 1")
        _check(
            self.condition_judge == "head" or self.condition_join == "classifier",
            "discriminator.condition_judge=generator is the P(c | y) of condition_join=classifier; set "
            "discriminator.condition_join=classifier or remove condition_judge",
        )
        _check(
            _is_default(self, "judge_references") or self.condition_judge == "generator",
            "discriminator.judge_references applies only to condition_judge=generator; remove it",
        )
        self._check_kind_fields()

    def _check_kind_fields(self) -> None:
        """The CNN's settings and the RNN's: each applies to its own kind only."""
        defaults = DiscriminatorConfig.__dataclass_fields__
        if self.kind == "cnn":
            _check(
                len(self.filter_sizes) == len(self.num_filters) and len(self.filter_sizes) > 0,
                "discriminator.filter_sizes and discriminator.num_filters must be non-empty lists of equal length",
            )
            _check(all(w >= 1 for w in self.filter_sizes), "discriminator.filter_sizes must be >= 1")
            _check(all(n >= 1 for n in self.num_filters), "discriminator.num_filters must be >= 1")
            _check(
                not self.causal or (self.fused_conv == "auto" and self.fused_groups == 1),
                "discriminator.fused_conv and fused_groups do not apply to causal=true (its convolutions are left-padded per width); remove them",
            )
            for name in ("rnn_cell", "rnn_hidden", "bidirectional", "rnn_pooling", "attention_heads", "position_dim"):
                _check(
                    getattr(self, name) == defaults[name].default,
                    f"discriminator.{name} applies only to kind='rnn'; remove it or set discriminator.kind=rnn",
                )
        else:
            _check(
                not self.causal,
                "discriminator.causal applies only to kind='cnn'; a one-way RNN D is causal: set discriminator.bidirectional=false",
            )
            _check(self.rnn_cell in ("gru", "lstm"), "discriminator.rnn_cell must be 'gru' or 'lstm'")
            _check(self.rnn_hidden >= 1, "discriminator.rnn_hidden must be >= 1")
            _check(self.position_dim >= 0, "discriminator.position_dim must be >= 0 (0: no position signal)")
            _check(
                self.rnn_pooling in ("last", "attention"),
                f"discriminator.rnn_pooling={self.rnn_pooling!r}: use 'last' or 'attention'",
            )
            if self.rnn_pooling == "attention":
                width = self.rnn_hidden * (2 if self.bidirectional else 1)
                _check(
                    self.attention_heads >= 1 and width % self.attention_heads == 0,
                    f"discriminator.attention_heads={self.attention_heads} must divide the RNN output size {width} "
                    "(rnn_hidden x directions)",
                )
            else:
                _check(
                    self.attention_heads == defaults["attention_heads"].default,
                    "discriminator.attention_heads applies only to rnn_pooling='attention'; remove it or set the pooling",
                )
            _check(
                self.filter_sizes == PAPER_FILTER_SIZES and self.num_filters == PAPER_NUM_FILTERS,
                "discriminator.filter_sizes/num_filters apply only to kind='cnn'; remove them",
            )


@dataclass
class PretrainConfig:
    """Maximum-likelihood pre-training of G (the paper: 120 epochs, Adam 0.01, clip 5, batch 64)."""

    epochs: int = 120
    batch_size: int = 64
    lr: float = 0.01
    grad_clip: float = 5.0
    patience: int = 0
    """Early stopping: end MLE when the validation NLL has not improved for this many epochs and keep
    the best epoch's G (0: off, the paper). Needs a validation set: data.num_valid or data.valid."""
    init_from: str = ""
    """Start G from an earlier run instead of a fresh initialisation: `DIR` (its latest checkpoint),
    `DIR@mle` (G at the end of its MLE phase) or `DIR@CHECKPOINT`; `pretrain.epochs` more MLE epochs
    follow (0: none). That run's data (vocabulary, oracle and its samples, conditions) is reused, so
    its data, condition and generator settings must equal this config's. '': off."""

    def __post_init__(self) -> None:
        _check(self.epochs >= 0, "pretrain.epochs must be >= 0")
        _check(self.patience >= 0, "pretrain.patience must be >= 0 (0: no early stopping)")
        _check(self.batch_size >= 1, "pretrain.batch_size must be >= 1")
        _check(self.lr > 0, "pretrain.lr must be > 0")
        _check(self.grad_clip > 0, "pretrain.grad_clip must be > 0")


@dataclass
class DPretrainConfig:
    """Pre-training of D (the paper: 50 x (10,000 fresh negatives + the positives, 3 epochs))."""

    steps: int = 50
    """How many times fresh negatives are drawn."""
    epochs: int = 3
    """Epochs over (positives + negatives) per step."""
    num_negatives: int = 10_000

    def __post_init__(self) -> None:
        _check(self.steps >= 0, "d_pretrain.steps must be >= 0")
        _check(self.epochs >= 1, "d_pretrain.epochs must be >= 1")
        _check(self.num_negatives >= 1, "d_pretrain.num_negatives must be >= 1")


G_STEP_FIELDS = tuple(
    "g_steps batch_size g_lr grad_clip rollout_num rollout_stride rollout_update_rate rollout_chunk baseline discount kl_weight".split()
)
ROLLOUT_FIELDS = ("rollout_num", "rollout_stride", "rollout_update_rate", "rollout_chunk")
ROLLOUT_ROWS_CPU, ROLLOUT_ROWS_GPU = 1024, 16384  # adversarial.rollout_chunk's default by device
REWARDS = ("rollout", "prefix_d")
D_STEP_FIELDS = ("d_steps", "d_epochs", "num_negatives")


@dataclass
class AdversarialConfig:
    """The adversarial loop (the paper's code: 200 epochs of 1 G step, then 5 x (negatives, 3 D epochs))."""

    epochs: int = 200
    g_steps: int = 1
    """Policy-gradient steps of G per adversarial epoch, each on a fresh batch."""
    batch_size: int = 64
    """Sequences per policy-gradient step."""
    g_lr: float = 0.01
    grad_clip: float = 5.0
    d_steps: int = 5
    """Times fresh negatives are drawn for D per adversarial epoch."""
    d_epochs: int = 3
    """Epochs over (positives + negatives) per D step."""
    num_negatives: int = 10_000
    reward: str = "rollout"
    """Where Q(t) comes from. 'rollout' (the paper): D's scores of Monte Carlo continuations of each
    prefix, about N x T^2 / 2 sampled tokens per sequence (rollout_stride cuts it). 'prefix_d': no
    rollouts; Q(t) = D(y_1..t) from a D that scores every prefix in one pass (discriminator.kind=rnn
    with bidirectional=false, or discriminator.causal=true), trained on every prefix of real and
    generated sequences (ScratchGAN's per-step D, de Masson d'Autume et al. 2019): cost linear in T.
    See docs/long_sequences.md."""
    rollout_num: int = 16
    """N: Monte Carlo continuations per prefix."""
    rollout_stride: int = 1
    """k: roll out only the prefixes t = k, 2k, ... (< T) and score the full sequence at T; tokens
    (j-1)k+1 .. jk share Q(jk), the tokens after the last multiple of k share D(Y). 1: every prefix
    (the paper); k ~ T/10 makes the cost linear in T; k >= T: every token gets D(Y)."""
    rollout_update_rate: float = 0.8
    """r in theta_roll <- r * theta_roll + (1 - r) * theta; 0 rolls out with the current G."""
    rollout_chunk: int | None = None
    """Rows per tensor operation when sampling rollouts and scoring them with D (bounds memory).
    None: 1,024 on the CPU, 16,384 on a GPU, where fewer and larger steps keep it busy (`rollout_rows`)."""
    baseline: str = "none"
    """'none' (the paper); 'mean': subtract the batch-mean reward at each time step; 'prefix':
    subtract the rollouts' value of the prefix before the token, A(t) = Q(t) - Q(t-1)."""
    discount: float = 1.0
    """gamma: Q(t) becomes gamma^(L - t) Q(t), L the sequence's last token (1: off, the paper; its code defines 0.95 unused)."""
    kl_weight: float = 0.0
    """Weight of a per-token KL(G || G_mle) penalty against G as it was after pre-training (0: off, the paper)."""
    train_g: bool = True
    """false: G is frozen in this phase (no policy-gradient steps; D-only adversarial training)."""
    train_d: bool = True
    """false: D is frozen in this phase (no D rounds; G-only adversarial training against the pre-trained D)."""

    def __post_init__(self) -> None:
        _check(self.epochs >= 0, "adversarial.epochs must be >= 0")
        for name, side in (("g_steps", "train_g"), ("d_steps", "train_d")):
            _check(
                getattr(self, name) >= 1,
                f"adversarial.{name} must be >= 1; to freeze that model use adversarial.{side}=false",
            )
        for name in ("batch_size", "d_epochs", "num_negatives", "rollout_num", "rollout_stride"):
            _check(getattr(self, name) >= 1, f"adversarial.{name} must be >= 1")
        _check(
            self.rollout_chunk is None or self.rollout_chunk >= 1, "adversarial.rollout_chunk must be >= 1 (or null: by device)"
        )
        _check(self.reward in REWARDS, f"adversarial.reward={self.reward!r}: use 'rollout' (the paper) or 'prefix_d'")
        _check(self.g_lr > 0 and self.grad_clip > 0, "adversarial.g_lr and adversarial.grad_clip must be > 0")
        _check(0.0 <= self.rollout_update_rate < 1.0, "adversarial.rollout_update_rate must be in [0, 1)")
        _check(self.baseline in ("none", "mean", "prefix"), "adversarial.baseline must be 'none', 'mean' or 'prefix'")
        _check(0.0 < self.discount <= 1.0, "adversarial.discount must be in (0, 1] (1: no discount)")
        _check(self.kl_weight >= 0, "adversarial.kl_weight must be >= 0 (0: no KL penalty)")
        _check(self.train_g or self.train_d, "adversarial.train_g and train_d are both false: set adversarial.epochs=0 instead")
        defaults = AdversarialConfig.__dataclass_fields__
        if self.reward != "rollout":
            for name in ROLLOUT_FIELDS:
                _check(
                    getattr(self, name) == defaults[name].default,
                    f"adversarial.{name} applies only to adversarial.reward=rollout ({self.reward} rolls nothing out); remove it",
                )
        frozen = {"train_g": G_STEP_FIELDS, "train_d": D_STEP_FIELDS}
        for side, names in frozen.items():
            if not getattr(self, side):
                for name in names:
                    _check(
                        getattr(self, name) == defaults[name].default,
                        f"adversarial.{name} does not apply with adversarial.{side}=false (that model is frozen); remove it",
                    )

    def rollout_rows(self, device_type: str) -> int:
        """rollout_chunk, or its default on a device of this type: the CPU's on 'cpu', a GPU's on any other."""
        if self.rollout_chunk is not None:
            return self.rollout_chunk
        return ROLLOUT_ROWS_CPU if device_type == "cpu" else ROLLOUT_ROWS_GPU


@dataclass
class EvalConfig:
    """What is measured and when."""

    every: int = 5
    """Write metrics every this many epochs (and at the end of every phase)."""
    num_samples: int = 10_000
    """Oracle: generator samples for NLL-oracle (the paper: 10,000)."""
    d_samples: int = 1_000
    """Real (held-out) and generated sequences each for D accuracy."""
    batch_size: int = 1_000
    """Rows per forward pass when sampling and scoring."""
    final_samples: int = 100
    """Samples written to samples.txt at the end of the run."""
    bleu_samples: int = 1000
    """Text: samples scored at each evaluation by BLEU-2..5 against the test lines, Self-BLEU and
    distinct-n (0: none)."""
    tensorboard: bool = False
    """Also log every metric to RUN_DIR/tensorboard (needs `pip install 'seqgan[tensorboard]'`)."""

    def __post_init__(self) -> None:
        for name in ("every", "num_samples", "d_samples", "batch_size"):
            _check(getattr(self, name) >= 1, f"eval.{name} must be >= 1")
        _check(self.final_samples >= 0, "eval.final_samples must be >= 0")
        _check(
            self.bleu_samples == 0 or self.bleu_samples >= 2,
            f"eval.bleu_samples={self.bleu_samples}: use 0 (no text metrics during training) or >= 2 (Self-BLEU compares samples)",
        )


@dataclass
class CheckpointConfig:
    """When checkpoints are written (weights, optimizer and RNG state: a resume continues exactly) and how many are kept."""

    every: int = 50
    """Write a checkpoint every this many epochs within a phase (and at every phase end)."""
    keep: int = 3
    """How many recent checkpoints to keep."""

    def __post_init__(self) -> None:
        _check(self.every >= 1 and self.keep >= 1, "checkpoint.every and checkpoint.keep must be >= 1")


@dataclass(frozen=True)
class AlgorithmSpec:
    """What the config knows of an algorithm; `seqgan.algorithms` registers one per GAN variant."""

    section: type | None
    """Its own config section (a dataclass; YAML key: the algorithm's name), or None."""
    uses: tuple[str, ...]
    """The shared sections it reads; the others must stay at their defaults (they would do nothing)."""
    check: Callable[[ExperimentConfig], None] | None = None
    """Checks across sections that only this algorithm needs (ConfigError with the fix)."""
    summary: str = ""
    """One line for `--help` and error messages."""


ALGORITHMS: dict[str, AlgorithmSpec] = {}
"""Every algorithm by name, filled when `seqgan.algorithms` is imported (importing `seqgan` does it)."""


def register_algorithm(name: str, spec: AlgorithmSpec) -> None:
    ALGORITHMS[name] = spec


PRECISIONS = ("fp32", "tf32", "bf16")
D_PRECISIONS = ("fp32", "bf16")  # discriminator.precision, besides null (the run's)


@dataclass
class ExperimentConfig:
    seed: int = 0
    """Seeds everything that is not seeded on purpose elsewhere (the oracle and its data)."""
    algorithm: str = "seqgan"
    """The GAN variant that trains G (`seqgan.algorithms`): 'seqgan' (the paper: policy gradient with
    Monte Carlo rollouts scored by D), 'mle' (maximum likelihood only), or another registered one;
    its own settings, if any, are the section named after it."""
    threads: int = 1
    """torch intra-op threads. 1 by default: on 2 cores, 2 threads beside another busy process ran 30-50x slower."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto'."""
    precision: str = "fp32"
    """Arithmetic of the training steps: 'fp32' (the default, as the paper), 'tf32' (CUDA matmuls and
    convolutions in TensorFloat-32), 'bf16' (training steps under bfloat16 autocast, on CPU or CUDA;
    G's output layer and sampling stay fp32; on a CPU without AVX-512 or AMX, where PyTorch has no bf16
    LSTM, a run with an LSTM in bf16 is refused: use GRU cells there). Evaluation (NLL-oracle, NLL-test,
    BLEU) is always fp32."""
    deterministic: bool = False
    """true: deterministic kernels only (torch.use_deterministic_algorithms, cuBLAS's fixed
    workspace), so that a CUDA run repeats bitwise; slower. CPU runs repeat bitwise either way."""
    cuda_graphs: bool = True
    """On a CUDA device, in one process, fp32 or tf32: G's MLE steps and D's training steps run as CUDA
    graphs, each captured once and replayed (`seqgan.cuda_graphs`): one launch a step instead of
    some sixty small kernels. The same computation; false runs every step eagerly. No effect elsewhere."""
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    d_pretrain: DPretrainConfig = field(default_factory=DPretrainConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    algo: Any = None
    """The chosen algorithm's own section (written in YAML under the algorithm's name), or None."""

    def __post_init__(self) -> None:
        _check(self.threads >= 1, "threads must be >= 1")
        self._check_algorithm()
        self._check_condition()
        _check(self.device in ("cpu", "cuda", "auto"), f"device={self.device!r}: use 'cpu', 'cuda' or 'auto'")
        _check(self.precision in PRECISIONS, f"precision={self.precision!r}: use one of {', '.join(PRECISIONS)}")
        _check(
            self.discriminator.precision in (None, *D_PRECISIONS),
            f"discriminator.precision={self.discriminator.precision!r}: use 'bf16', 'fp32' or null (the run's precision)",
        )
        _check(
            self.data.source == "text" or self.eval.bleu_samples == EvalConfig.bleu_samples,
            "eval.bleu_samples applies only to data.source=text; remove it",
        )
        _check(
            self.data.source == "oracle" or self.eval.num_samples == EvalConfig.num_samples,
            "eval.num_samples (samples for NLL-oracle) applies only to data.source=oracle; for text use eval.bleu_samples",
        )
        if self.pretrain.patience > 0:
            has_valid = self.data.num_valid > 0 if self.data.source == "oracle" else bool(self.data.valid)
            _check(
                has_valid,
                "pretrain.patience needs a validation set (never the test set): set data.num_valid (oracle) or data.valid (text)",
            )
            _check(self.pretrain.epochs > 0, "pretrain.patience applies to MLE epochs, but pretrain.epochs is 0; remove it")
        if self.discriminator.kind == "cnn" and "discriminator" in ALGORITHMS[self.algorithm].uses:
            too_wide = [w for w in self.discriminator.filter_sizes if w > self.data.length]
            _check(
                not too_wide,
                f"discriminator.filter_sizes {too_wide} are wider than the sequences ({self.data.length} tokens); "
                "drop those widths (and their num_filters entries)",
            )

    def _check_algorithm(self) -> None:
        """A known algorithm, its own section built, and the shared sections it does not read left alone."""
        _check(
            self.algorithm in ALGORITHMS,
            f"algorithm={self.algorithm!r}: use one of {', '.join(sorted(ALGORITHMS))}",
        )
        spec = ALGORITHMS[self.algorithm]
        if spec.section is None:
            _check(self.algo is None, f"algorithm={self.algorithm} has no section of its own; remove it")
        elif self.algo is None:
            self.algo = spec.section()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value) and f.name not in spec.uses and f.name != "algo":
                _check(
                    value == type(value)(),
                    f"{f.name}: algorithm={self.algorithm} does not use this section ({spec.summary}); remove it, "
                    "or choose an algorithm that does",
                )
        if spec.check is not None:
            spec.check(self)

    def _check_condition(self) -> None:
        """What the condition section may hold depends on the data source."""
        c, d = self.condition, self.data
        _check(
            c.kind == "none" or self.generator.cell != "rmc",
            "generator.cell=rmc has no condition input: use an lstm or gru generator for condition.kind",
        )
        _check(
            c.kind == "none" or self.discriminator.num_rep == 1,
            "discriminator.num_rep > 1 (RelGAN's D) has no condition input: set num_rep=1 for condition.kind",
        )
        if c.kind == "none":
            _check(
                self.discriminator.mismatched == 0,
                "discriminator.mismatched pairs real sequences with wrong conditions: it needs condition.kind; remove it",
            )
            _check(
                self.discriminator.condition_join == "concat",
                "discriminator.condition_join applies only to conditional runs (condition.kind); remove it",
            )
            return
        if self.discriminator.condition_join == "classifier":
            self._check_classifier_join()
        other = TEXT_CONDITION_FIELDS if d.source == "oracle" else ORACLE_CONDITION_FIELDS
        for name in other:
            _check(
                _is_default(c, name),
                f"condition.{name} does not apply to data.source={d.source!r}; remove it (or set data.source)",
            )
        if d.source == "oracle":
            _check(
                c.kind != "source",
                "condition.kind=source reads a source sequence from each JSON Lines record: set data.source=text and data.train",
            )
            _check(
                d.oracle == "random",
                "a conditional oracle is built from data.oracle=random (the paper's oracle has no condition)",
            )
            return
        self._check_text_condition()

    def _check_classifier_join(self) -> None:
        """discriminator.condition_join=classifier: what its P(c | y) can score, and with what."""
        c = self.condition
        _check(
            c.kind in ("label", "features"),
            "discriminator.condition_join=classifier scores labels or feature vectors: it needs condition.kind=label "
            "or features (for sources use 'concat' or 'projection')",
        )
        if self.discriminator.condition_judge == "generator":
            _check(
                self.generator.noise_dim == 0,
                "discriminator.condition_judge=generator needs p(y | c) exactly, a G without noise input: set "
                "generator.noise_dim=0 or use condition_judge=head",
            )
            _check(
                c.kind == "features" or _is_default(self.discriminator, "judge_references"),
                "discriminator.judge_references applies to feature vectors (a label judge compares every class); remove it",
            )
        _check(
            self.discriminator.mismatched == 0,
            "discriminator.condition_join=classifier learns the class from real sequences alone; set "
            "discriminator.mismatched=0 (real sequences shown as negatives would teach its real/fake output "
            "that real text is fake)",
        )

    def _check_text_condition(self) -> None:
        """Text data: the files each condition kind reads its conditions from."""
        c, d = self.condition, self.data
        if c.kind == "label":
            _check(bool(c.label_fields), "condition.kind=label needs condition.label_fields, e.g. condition.label_fields=[genre]")
            for name in ("train", "valid", "test"):
                path = getattr(d, name)
                _check(
                    not path or path.lower().endswith(".jsonl"),
                    f"data.{name}={path}: labels are read from JSON Lines; give a .jsonl file whose lines hold {c.label_fields}",
                )
            return
        if c.kind == "source":
            _check(
                c.source_field != d.text_field,
                f"condition.source_field and data.text_field are both {d.text_field!r}: the source and the target need their own fields",
            )
            for name in ("train", "valid", "test"):
                path = getattr(d, name)
                _check(
                    not path or path.lower().endswith(".jsonl"),
                    f"data.{name}={path}: sources are read from JSON Lines; give a .jsonl file whose lines hold "
                    f"{c.source_field!r} and {d.text_field!r}",
                )
            return
        _check(
            bool(c.features),
            "condition.kind=features needs condition.features, the feature rows of data.train (.npy or .safetensors)",
        )
        for name in ("valid", "test"):
            has_text, has_rows = bool(getattr(d, name)), bool(getattr(c, f"{name}_features"))
            _check(
                has_text == has_rows,
                f"condition.{name}_features gives the feature rows of data.{name}: set both or neither",
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML holds it: the algorithm's own section under the algorithm's name."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "algo"}
        out = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in out.items()}
        return out | ({self.algorithm: dataclasses.asdict(self.algo)} if self.algo is not None else {})


# ----------------------------------------------------------------------------- loading


def on_off(value: str | bool) -> str:
    """A setting of 'auto' / 'on' / 'off' as written: YAML reads unquoted on and off (and true, false)
    as booleans, which mean 'on' and 'off' here; strings are returned as they are."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of {_type_name(item_tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} is not any of {[_type_name(a) for a in args]}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, bool):  # YAML 1.1: unquoted yes / no / on / off are booleans
            raise ConfigError(
                f"{where}: expected a string, got {value!r}; YAML reads unquoted yes, no, on, off as booleans: quote it"
            )
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp}")


def _unknown_key(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        where = f"{prefix}{key}"
        if key == "algo" and cls is ExperimentConfig:  # built by config_from_dict
            kwargs[key] = value
            continue
        if key not in fields:
            raise _unknown_key(key, [k for k in fields if k != "algo"], where)
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, f"{where}.")
        else:
            kwargs[key] = _coerce(value, tp, where)
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'adversarial.epochs=10' -> (['adversarial', 'epochs'], 10); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. adversarial.epochs=10")
    key, _, value = text.partition("=")
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"override {text!r}: empty key")
    return path, yaml.safe_load(value) if value.strip() else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings to a raw (dict) config; key names are checked when built."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def config_from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """The top level: shared sections, and the chosen algorithm's own section under its name."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping, got {raw!r}")
    raw = dict(raw)
    if "algo" in raw:
        raise _unknown_key("algo", [f.name for f in dataclasses.fields(ExperimentConfig) if f.name != "algo"], "algo")
    name = raw.get("algorithm", ExperimentConfig.algorithm)
    for other in [k for k in raw if k in ALGORITHMS]:
        _check(
            other == name,
            f"{other}: settings of algorithm={other}, but this config runs algorithm={name}; remove them or set algorithm={other}",
        )
        _check(
            ALGORITHMS[other].section is not None, f"{other}: algorithm={other} has no settings of its own; remove the section"
        )
    section = raw.pop(name, None) if isinstance(name, str) and name in ALGORITHMS else None
    if section is not None:
        raw["algo"] = _build(ALGORITHMS[name].section, section or {}, f"{name}.")
    return _build(ExperimentConfig, raw, "")


OLD_HELDOUT_DEFAULT = 1000  # data.heldout_size's default before it became a share (0: data.heldout_share)


def upgrade_saved(raw: dict[str, Any]) -> dict[str, Any]:
    """A config as run folders of earlier versions saved it, read as today's: those wrote every field,
    so an oracle run's config.yaml holds the old text-only default data.heldout_size: 1000, which
    never applied to the oracle and would now be refused as a setting that does not apply."""
    data = raw.get("data")
    if isinstance(data, dict) and data.get("source", "oracle") == "oracle" and data.get("heldout_size") == OLD_HELDOUT_DEFAULT:
        raw = {**raw, "data": {k: v for k, v in data.items() if k != "heldout_size"}}
    return raw


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML file (or start from defaults when `path` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    raw = apply_overrides(upgrade_saved(raw), overrides or [])
    where = f"{path}: " if path is not None else ""
    try:
        return config_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None


def changed_settings(before: ExperimentConfig, after: ExperimentConfig, sections: tuple[str, ...] | None = None) -> list[str]:
    """The `section.key` names (a bare name for a top-level setting) whose values differ between
    two configs, in field order; only those of `sections` when given."""
    a, b = before.to_dict(), after.to_dict()
    out = []
    for section in sections or tuple(b):
        if isinstance(b[section], dict):
            out += [f"{section}.{key}" for key in b[section] if a.get(section, {}).get(key) != b[section][key]]
        elif a.get(section) != b[section]:
            out.append(section)
    return out


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
