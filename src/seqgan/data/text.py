"""A text corpus as training data: read, tokenised, split and encoded (with reports, never silent).

From the data config: the training file (minus a seeded held-out part, never trained on), an
optional validation file and an optional test file (without one, the held-out part is the test
set; by default 5% of the lines, at most 1,000). The tokenizer is trained on the training lines
only, on what training reads of them (each line's first max_len tokens). Each split is encoded to a
(R, max_len + 1) LongTensor of ids, an end token, then padding; lines longer than max_len are
truncated or dropped as configured, and every count goes into `report`, with a summary of the
training file and warnings (`seqgan.data.report`) under report["summary"].

BLEU references are the raw lines (lower-cased when the tokenizer lower-cases), split into units:
characters for the char tokenizer, whitespace-separated words otherwise.

A conditional run (`condition.kind` label, features or source) also gets each split's
conditions, row for row with its tokens (`cond_*`, see `seqgan.data.conditions`): the labels of
each JSON Lines record, the rows of the features file that goes with each corpus file, or the
source text of each record encoded to ids. Sources share the target's tokenizer, trained on the
training lines and their sources (one vocabulary for both sides), and a pair whose target or
source is dropped (`data.overflow=drop`) is dropped whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqgan.config import ConditionConfig, DataConfig
from seqgan.data.conditions import ConditionSpace, encode_sources, label_space, read_features
from seqgan.data.corpus import Corpus, encode_lines, heldout_count, read_corpus, split_heldout
from seqgan.data.report import corpus_warnings, length_profile, profile_lines
from seqgan.data.tokenizers import Tokenizer, VocabOptions, build_tokenizer


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
    condition: ConditionSpace | None = None
    cond_train: torch.Tensor | None = None  # (R, ...) the condition of each row of train; None when unconditional
    cond_heldout: torch.Tensor | None = None
    cond_test: torch.Tensor | None = None
    cond_valid: torch.Tensor | None = None
    cond_test_lines: torch.Tensor | None = None  # (len(test_lines), ...) the condition of every test line, encoded or not


def make_text_data(
    cfg: DataConfig,
    tokenizer: Tokenizer | None = None,
    condition: ConditionConfig | None = None,
    space: ConditionSpace | None = None,
) -> TextData:
    """Read and encode the corpus files; build the tokenizer from the training lines unless given.

    With a conditional `condition`, read each split's conditions too; `space` (a reopened run's)
    fixes the label values and feature width, else they come from the training file."""
    kind = "none" if condition is None else condition.kind
    fields = tuple(condition.label_fields) if kind == "label" else ()
    source_field = condition.source_field if kind == "source" else ""
    corpus = read_corpus(cfg.train, cfg.text_field, fields, source_field)
    # the condition of each line: a tensor, or for sources their texts (encoded once the tokenizer exists)
    conds, space = _train_conditions(corpus, condition, cfg.train, space)
    held_count = heldout_count(len(corpus.lines), cfg.heldout_size, cfg.heldout_share)
    train_idx, held_idx = split_heldout(len(corpus.lines), held_count, cfg.heldout_seed)
    train_lines = [corpus.lines[i] for i in train_idx]
    held_lines = [corpus.lines[i] for i in held_idx]
    if tokenizer is None:
        sources = [corpus.sources[i] for i in train_idx] if kind == "source" else []
        tokenizer = _train_tokenizer(cfg, condition, train_lines + sources)
    report: dict[str, Any] = {"train_file": str(cfg.train), "blank_lines": corpus.blank_lines, "vocab_size": tokenizer.vocab_size}
    split = _Splits(cfg, tokenizer, kind=kind, space=space, fields=fields, source_field=source_field, report=report)

    def pick(idx: list[int]) -> torch.Tensor | list[str] | None:
        if conds is None:
            return None
        return [conds[i] for i in idx] if kind == "source" else conds[idx]

    train, cond_train = split.encode(train_lines, pick(train_idx), "train")
    heldout, cond_heldout = split.encode(held_lines, pick(held_idx), "heldout")
    test_lines, test, cond_test, test_conds = held_lines, heldout, cond_heldout, pick(held_idx)
    if cfg.test:
        test_lines, test_conds = split.other_file(cfg.test, condition.test_features if kind == "features" else "")
        test, cond_test = split.encode(test_lines, test_conds, "test")
    valid = cond_valid = None
    if cfg.valid:
        valid_file = split.other_file(cfg.valid, condition.valid_features if kind == "features" else "")
        valid, cond_valid = split.encode(*valid_file, "valid")
    report["summary"] = corpus_summary(cfg, corpus, train_lines, tokenizer, report)
    return TextData(
        tokenizer=tokenizer,
        train=train,
        heldout=heldout,
        test=test,
        valid=valid,
        train_lines=[split.bleu_line(x) for x in train_lines],
        heldout_lines=[split.bleu_line(x) for x in held_lines],
        test_lines=[split.bleu_line(x) for x in test_lines],
        report=report,
        condition=space,
        cond_train=cond_train,
        cond_heldout=cond_heldout,
        cond_test=cond_test,
        cond_valid=cond_valid,
        cond_test_lines=test_conds,
    )


def _train_conditions(
    corpus: Corpus, condition: ConditionConfig | None, train_path: str, space: ConditionSpace | None
) -> tuple[torch.Tensor | list[str] | None, ConditionSpace | None]:
    """The condition of each line of the training file (None when unconditional; sources as texts)
    and the space they live in (`space` when given, else made from the training file)."""
    kind = "none" if condition is None else condition.kind
    if kind == "label":
        space = space or label_space(list(condition.label_fields), corpus)
        return space.label_ids(corpus, train_path), space
    if kind == "features":
        conds = read_features(condition.features, corpus, space.feature_dim if space else None)
        return conds, space or ConditionSpace("features", feature_dim=conds.shape[1])
    if kind == "source":
        space = space or ConditionSpace("source", (condition.source_field,), source_len=condition.max_source_len)
        return corpus.sources, space
    return None, space


@dataclass
class _Splits:
    """How each split of a text data set is read and encoded: the tokenizer, the overflow rule and
    the conditions of the run; what each split lost is added to `report`."""

    cfg: DataConfig
    tokenizer: Tokenizer
    kind: str
    """condition.kind ('none' when unconditional)."""
    space: ConditionSpace | None
    fields: tuple[str, ...]
    source_field: str
    report: dict[str, Any]

    def encode(
        self, lines: list[str], line_conds: torch.Tensor | list[str] | None, name: str
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token rows (R, L) of the lines that fit (data.overflow) and their conditions."""
        tokens, kept, rep = encode_lines(lines, self.tokenizer, self.cfg.max_len, self.cfg.overflow)
        self.report[name] = rep
        if self.kind == "source":
            # encode the sources of the kept pairs, then keep the pairs whose source survived too
            sources = [line_conds[i] for i in kept.tolist()]
            cond, kept_sources, source_rep = encode_sources(sources, self.tokenizer, self.space.source_len, self.cfg.overflow)
            rep |= source_rep | {"kept": len(kept_sources)}
            return tokens[kept_sources], cond
        return tokens, None if line_conds is None else line_conds[kept]

    def other_file(self, path: str, features: str) -> tuple[list[str], torch.Tensor | list[str] | None]:
        """The lines of a test or validation file and their conditions."""
        other = read_corpus(path, self.cfg.text_field, self.fields, self.source_field)
        return other.lines, _conditions(other, self.space, features, self.cfg.train)

    def bleu_line(self, line: str) -> str:
        """The line as BLEU reads it: lower-cased if asked, and with data.word_split=nltk in the
        tokenizer's words joined by spaces ("at night." -> "at night ."), like decoded samples."""
        if self.cfg.tokenizer == "word" and self.cfg.word_split == "nltk":
            return " ".join(self.tokenizer.split(line))
        return line.lower() if self.cfg.lowercase else line


def _train_tokenizer(cfg: DataConfig, condition: ConditionConfig | None, lines: list[str]) -> Tokenizer:
    """The tokenizer data.tokenizer names, built from the training lines (and sources)."""
    options = _vocab_options(cfg, condition)
    return build_tokenizer(cfg.tokenizer, lines, cfg.max_vocab or None, cfg.lowercase, cfg.word_split, options)


def _vocab_options(cfg: DataConfig, condition: ConditionConfig | None) -> VocabOptions:
    """The vocabulary counts what training reads: each line's first data.max_len tokens (a source's
    first condition.max_source_len), none of the lines data.overflow=drop leaves out."""
    if condition is not None and condition.kind == "source":
        return VocabOptions(drop_spaces=cfg.drop_spaces, max_tokens=max(cfg.max_len, condition.max_source_len))
    return VocabOptions(drop_spaces=cfg.drop_spaces, max_tokens=cfg.max_len, drop_longer=cfg.overflow == "drop")


def corpus_summary(
    cfg: DataConfig, corpus: Corpus, train_lines: list[str], tokenizer: Tokenizer, report: dict[str, Any]
) -> dict[str, Any]:
    """The figures of the training file (`seqgan.data.report`): what `train` prints, with warnings."""
    parts = [report["train"], report["heldout"]]
    lines, held = len(corpus.lines), report["heldout"]["lines"]
    rates = {name: _share(report[key]["unk_tokens"], report[key]["tokens"]) for name, key in UNK_SETS if key in report}
    summary: dict[str, Any] = {
        "file": cfg.train,
        "lines_read": lines + corpus.blank_lines,
        "lines": lines,
        "blank": corpus.blank_lines,
        "kept": sum(r["kept"] for r in parts),
        "truncated": sum(r["truncated"] for r in parts),
        "dropped_too_long": sum(r["dropped"] for r in parts),
        "dropped": sum(r["dropped"] + r["empty"] for r in parts),
        "overflow": cfg.overflow,
        "max_len": cfg.max_len,
        "heldout": held,
        "heldout_share": _share(held, lines),
        "train_lines": len(train_lines),
        "test": cfg.test or "the held-out lines",
        "vocab_size": tokenizer.vocab_size,
        "tokenizer": cfg.tokenizer + (", spaces dropped" if cfg.drop_spaces else ""),
        "unk_rate": rates,
        "length": length_profile([len(tokenizer.encode(line)) for line in train_lines]),
        **dataclasses.asdict(profile_lines(corpus.lines, corpus.line_numbers)),
    }
    if cfg.tokenizer == "char" and not cfg.drop_spaces:
        chars = sum(len(line) for line in train_lines)
        summary["space_share"] = _share(sum(c.isspace() for line in train_lines for c in line), chars)
    summary["warnings"] = corpus_warnings(summary)
    return summary


UNK_SETS = (("train", "train"), ("held-out", "heldout"), ("test", "test"), ("valid", "valid"))
"""The unknown-token rates a summary shows: (name, key of the split's report)."""


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _conditions(corpus: Corpus, space: ConditionSpace | None, features: str, train_path: str) -> torch.Tensor | list[str] | None:
    """The conditions of a test or validation corpus, in the training data's label ids or feature
    width; sources as texts (encoded with the split's lines)."""
    if space is None:
        return None
    if space.kind == "source":
        return corpus.sources
    if space.kind == "label":
        return space.label_ids(corpus, train_path)
    return read_features(features, corpus, space.feature_dim)


def decode_rows(tokenizer: Tokenizer, tokens: torch.Tensor) -> list[str]:
    """(R, L) ids -> R strings (decoding stops at the end token)."""
    return [tokenizer.decode(row) for row in tokens.tolist()]


def resolve_paths(cfg: DataConfig, base: Path, condition: ConditionConfig | None = None) -> None:
    """Make the corpus (and features) paths absolute, so a run can be evaluated from any folder."""
    for section, names in (
        (cfg, ("train", "valid", "test", "word_vectors")),
        (condition, ("features", "valid_features", "test_features")),
    ):
        for name in names if section is not None else ():
            value = getattr(section, name)
            if value:
                setattr(section, name, str((base / value).resolve()))
