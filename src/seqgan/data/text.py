"""A text corpus as training data: read, tokenised, split and encoded (with reports, never silent).

From the data config: the training file (minus a seeded held-out part, never trained on), an
optional validation file and an optional test file (without one, the held-out part is the test
set). The tokenizer is trained on the training lines only. Each split is encoded to a
(R, max_len + 1) LongTensor of ids, an end token, then padding; lines longer than max_len are
truncated or dropped as configured, and every count goes into `report`.

BLEU references are the raw lines (lower-cased when the tokenizer lower-cases), split into units:
characters for the char tokenizer, whitespace-separated words otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqgan.config import DataConfig
from seqgan.data.corpus import encode_corpus, read_corpus, split_heldout
from seqgan.data.tokenizers import Tokenizer, build_tokenizer


def text_units(text: str, kind: str) -> list[str]:
    """The units BLEU counts: characters for char-level corpora, else whitespace-separated words."""
    return [c for c in text if not c.isspace()] if kind == "char" else text.split()


@dataclass
class TextData:
    tokenizer: Tokenizer
    train: torch.Tensor  # (R, L) ids, end token, padding
    heldout: torch.Tensor  # (R', L): lines of the training file held out
    test: torch.Tensor  # (R'', L): the test file, or the held-out lines
    valid: torch.Tensor | None
    train_lines: list[str]
    heldout_lines: list[str]
    test_lines: list[str]
    report: dict[str, Any] = field(default_factory=dict)


def make_text_data(cfg: DataConfig, tokenizer: Tokenizer | None = None) -> TextData:
    """Read and encode the corpus files; build the tokenizer from the training lines unless given."""
    corpus = read_corpus(cfg.train, cfg.text_field)
    train_idx, held_idx = split_heldout(len(corpus.lines), cfg.heldout_size, cfg.heldout_seed)
    train_lines = [corpus.lines[i] for i in train_idx]
    held_lines = [corpus.lines[i] for i in held_idx]
    if tokenizer is None:
        tokenizer = build_tokenizer(cfg.tokenizer, train_lines, cfg.max_vocab or None, cfg.lowercase)
    report: dict[str, Any] = {"train_file": str(cfg.train), "blank_lines": corpus.blank_lines, "vocab_size": tokenizer.vocab_size}

    def encode(lines: list[str], name: str) -> torch.Tensor:
        tokens, rep = encode_corpus(lines, tokenizer, cfg.max_len, cfg.overflow)
        report[name] = rep
        return tokens

    train = encode(train_lines, "train")
    heldout = encode(held_lines, "heldout")
    test_lines = read_corpus(cfg.test, cfg.text_field).lines if cfg.test else held_lines
    test = encode(test_lines, "test") if cfg.test else heldout
    valid = encode(read_corpus(cfg.valid, cfg.text_field).lines, "valid") if cfg.valid else None
    norm = (lambda s: s.lower()) if cfg.lowercase else (lambda s: s)
    return TextData(
        tokenizer, train, heldout, test, valid,
        [norm(x) for x in train_lines], [norm(x) for x in held_lines], [norm(x) for x in test_lines], report,
    )  # fmt: skip


def decode_rows(tokenizer: Tokenizer, tokens: torch.Tensor) -> list[str]:
    """(R, L) ids -> R strings (decoding stops at the end token)."""
    return [tokenizer.decode(row) for row in tokens.tolist()]


def resolve_paths(cfg: DataConfig, base: Path) -> None:
    """Make the corpus paths absolute, so a run can be evaluated from any folder."""
    for name in ("train", "valid", "test"):
        value = getattr(cfg, name)
        if value:
            setattr(cfg, name, str((base / value).resolve()))
