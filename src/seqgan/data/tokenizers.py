"""Tokenisers for real corpora: word, character and subword BPE, with fixed special-token ids.

Every tokeniser maps text to ids and back with the same four special tokens at the same ids:
PAD=0 (padding after the end), BOS=1 (the generator's start token), EOS=2 (end of sequence),
UNK=3 (anything outside the vocabulary). `encode` never adds BOS or EOS: the sequence layout is
`seqgan.data.corpus.encode_corpus`'s job. `decode` skips PAD and BOS, stops at the first EOS and
writes UNK as `<unk>`.

- word: whitespace split (optionally lower-cased); the vocabulary is the most frequent words up
  to the size limit, ties broken by the word itself (Unicode order), so it is deterministic.
  Decoding joins words with single spaces. `split="nltk"` splits words with NLTK's Treebank-style
  word tokenizer instead (`NLTKWordTokenizer`, the one `nltk.word_tokenize` applies per sentence;
  no data download): punctuation and clitics become words of their own ("night." -> "night",
  "."; "man's" -> "man", "'s"), as in the Texygen benchmark's COCO vocabulary and BLEU.
- char: one token per Unicode code point, whitespace included, so it works for scripts without
  spaces (Chinese) and for ABC music notation. Same frequency rule; decoding joins with no spaces.
  `drop_spaces=True` leaves whitespace out: for corpora that separate characters by spaces
  ("床 前 明 月 光" is 5 tokens, not 9); decoded text then has no spaces.

The vocabulary is counted on what training reads: with `max_tokens`, each line's first
`max_tokens` tokens (a word or character tokeniser), or its first `max_tokens` space-separated
words (BPE), so that one very long line cannot fill the vocabulary with tokens never trained on.
- bpe: HF `tokenizers` byte-pair encoding trained on the training lines, with a Metaspace
  pre-tokeniser and decoder (spaces become `▁` and come back on decoding), so decoding gives the
  text back with its spaces. The alphabet is limited to fit the vocabulary size.

A tokeniser is saved as one JSON file in the run directory and reused by sample and evaluate.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
KINDS = ("word", "char", "bpe")
WORD_SPLITS = ("whitespace", "nltk")
FORMAT_VERSION = 1


class TokenizerError(ValueError):
    """A tokeniser that cannot be built or loaded; the message says what to change."""


class Tokenizer(Protocol):
    """What the rest of seqgan needs from a tokeniser."""

    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def save(self, path: str | Path) -> None: ...

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer: ...


def _content_ids(ids: Sequence[int]) -> list[int]:
    """The ids before the first EOS, without PAD and BOS."""
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(i)
    return out


def _write_json(path: str | Path, payload: dict) -> None:
    """Write through a temporary file so that a failed save never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


@dataclass
class VocabTokenizer:
    """Word or character tokeniser backed by an explicit token list (specials first)."""

    kind: str
    tokens: list[str]
    lowercase: bool = False
    split_rule: str = "whitespace"
    """Word tokenisers: 'whitespace' or 'nltk' (see the module docstring)."""
    drop_spaces: bool = False
    """Character tokenisers: leave whitespace out of the tokens."""

    def __post_init__(self) -> None:
        if self.split_rule not in WORD_SPLITS or (self.kind != "word" and self.split_rule != "whitespace"):
            raise TokenizerError(
                f"split={self.split_rule!r}: use one of {list(WORD_SPLITS)}, and 'nltk' only for word tokenizers"
            )
        if self.drop_spaces and self.kind != "char":
            raise TokenizerError(f"drop_spaces applies to char tokenizers only ({self.kind} tokens hold no spaces)")
        if tuple(self.tokens[:4]) != SPECIAL_TOKENS:
            raise TokenizerError(f"{self.kind} vocabulary must start with {list(SPECIAL_TOKENS)}, got {self.tokens[:4]}")
        self._index = {t: i for i, t in enumerate(self.tokens)}
        # Special-token strings in the text are ordinary (unknown) text, never control tokens.
        for special in SPECIAL_TOKENS:
            self._index[special] = UNK

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """The token strings of `text`, before lookup."""
        if self.lowercase:
            text = text.lower()
        if self.kind == "char":
            return [c for c in text if not c.isspace()] if self.drop_spaces else list(text)
        return _nltk_words(text) if self.split_rule == "nltk" else text.split()

    def encode(self, text: str) -> list[int]:
        index = self._index
        return [index.get(t, UNK) for t in self.split(text)]

    def decode(self, ids: Sequence[int]) -> str:
        sep = " " if self.kind == "word" else ""
        return sep.join(self.tokens[i] for i in _content_ids(ids))

    def save(self, path: str | Path) -> None:
        payload = {"version": FORMAT_VERSION, "kind": self.kind, "lowercase": self.lowercase, "split": self.split_rule}
        payload |= {"drop_spaces": True} if self.drop_spaces else {}  # absent: the files of earlier versions
        _write_json(path, payload | {"tokens": self.tokens})

    @classmethod
    def load(cls, path: str | Path) -> VocabTokenizer:
        return _load_as(cls, path)


@functools.cache
def _nltk_tokenizer():
    try:
        from nltk.tokenize import NLTKWordTokenizer
    except ImportError:
        raise TokenizerError("data.word_split=nltk needs the nltk package: pip install nltk") from None
    return NLTKWordTokenizer()


@functools.lru_cache(maxsize=200_000)
def _nltk_split(text: str) -> tuple[str, ...]:
    # Cached: building the vocabulary and encoding split the same training lines (NLTK's regexes
    # cost about 0.3 ms a line, the bulk of indexing a corpus).
    return tuple(_nltk_tokenizer().tokenize(text))


def _nltk_words(text: str) -> list[str]:
    return list(_nltk_split(text))


class BpeTokenizer:
    """Subword BPE from HF `tokenizers`, with the special tokens at ids 0..3."""

    kind = "bpe"

    def __init__(self, hf_tokenizer) -> None:
        ids = [hf_tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != [PAD, BOS, EOS, UNK]:
            raise TokenizerError(f"BPE special tokens {list(SPECIAL_TOKENS)} must have ids [0, 1, 2, 3], got {ids}")
        self.hf = hf_tokenizer

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(_content_ids(ids), skip_special_tokens=False)

    def save(self, path: str | Path) -> None:
        _write_json(path, {"version": FORMAT_VERSION, "kind": "bpe", "hf_tokenizer": json.loads(self.hf.to_str())})

    @classmethod
    def load(cls, path: str | Path) -> BpeTokenizer:
        return _load_as(cls, path)


def _check_vocab_size(vocab_size: int | None) -> None:
    if vocab_size is not None and vocab_size < len(SPECIAL_TOKENS) + 1:
        raise TokenizerError(
            f"vocab_size={vocab_size} is too small: it must hold the {len(SPECIAL_TOKENS)} special tokens "
            f"{list(SPECIAL_TOKENS)} and at least one text token; set vocab_size >= {len(SPECIAL_TOKENS) + 1}"
        )


def most_frequent(pieces: Iterable[str], limit: int | None) -> list[str]:
    """The `limit` most frequent pieces (all if None), ties broken by the piece itself."""
    counts = Counter(pieces)
    for special in SPECIAL_TOKENS:
        counts.pop(special, None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [piece for piece, _ in ranked[:limit]]


@dataclass(frozen=True)
class VocabOptions:
    """How a word or character vocabulary is built (see `build_tokenizer`)."""

    lowercase: bool = False
    split: str = "whitespace"
    drop_spaces: bool = False
    max_tokens: int | None = None
    drop_longer: bool = False


def _build_vocab(kind: str, lines: Sequence[str], vocab_size: int | None, o: VocabOptions) -> VocabTokenizer:
    splitter = VocabTokenizer(kind, list(SPECIAL_TOKENS), o.lowercase, o.split, o.drop_spaces)
    limit = None if vocab_size is None else vocab_size - len(SPECIAL_TOKENS)

    def read(line: str) -> list[str]:
        """The tokens of `line` that training reads: its first max_tokens, none of a line dropped as too long."""
        tokens = splitter.split(line)
        if o.max_tokens is None or len(tokens) <= o.max_tokens:
            return tokens
        return [] if o.drop_longer else tokens[: o.max_tokens]

    pieces = most_frequent((t for line in lines for t in read(line)), limit)
    return VocabTokenizer(kind, list(SPECIAL_TOKENS) + pieces, o.lowercase, o.split, o.drop_spaces)


def first_words(line: str, n: int) -> str:
    """`line` cut after its first `n` space-separated words (unchanged when it has no more)."""
    parts = line.split(" ")
    seen = 0
    for i, part in enumerate(parts):
        seen += bool(part)
        if seen > n:
            return " ".join(parts[:i])
    return line


def _build_bpe(lines: Sequence[str], vocab_size: int | None, lowercase: bool) -> BpeTokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE(unk_token=SPECIAL_TOKENS[UNK]))
    if lowercase:
        hf.normalizer = normalizers.Lowercase()
    hf.pre_tokenizer = pre_tokenizers.Metaspace()
    hf.decoder = decoders.Metaspace()
    size = vocab_size if vocab_size is not None else 30_000
    # Without limit_alphabet the trainer keeps every character seen, past the vocabulary limit.
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=list(SPECIAL_TOKENS), limit_alphabet=size - len(SPECIAL_TOKENS), show_progress=False
    )
    hf.train_from_iterator(lines, trainer, length=len(lines))
    return BpeTokenizer(hf)


def build_tokenizer(
    kind: str,
    lines: Sequence[str],
    vocab_size: int | None = None,
    lowercase: bool = False,
    split: str = "whitespace",
    options: VocabOptions | None = None,
) -> Tokenizer:
    """Train a `kind` tokeniser ('word', 'char' or 'bpe') on the training `lines`.

    `vocab_size` counts the four special tokens; None keeps every word/character (30,000 for BPE).
    `split`: how a word tokeniser finds words ('whitespace' or 'nltk'). `options` (its lowercase
    and split are those given here): drop_spaces for char; max_tokens, the tokens of each line
    counted (the rest is cut by training), and drop_longer, lines longer than that not counted at all.
    """
    o = VocabOptions(lowercase, split) if options is None else dataclasses.replace(options, lowercase=lowercase, split=split)
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer kind {kind!r}; choose one of {list(KINDS)}")
    _check_vocab_size(vocab_size)
    if not any(line.strip() for line in lines):
        raise TokenizerError("no text to train the tokenizer on: every training line is empty")
    if kind == "bpe":
        if split != "whitespace":
            raise TokenizerError(f"split={split!r} applies to word tokenizers only; BPE splits on its own")
        if o.drop_spaces:
            raise TokenizerError("drop_spaces applies to char tokenizers only")
        cut = lines if o.max_tokens is None else [first_words(line, o.max_tokens) for line in lines]
        tokenizer = _build_bpe(cut, vocab_size, lowercase)
    else:
        tokenizer = _build_vocab(kind, lines, vocab_size, o)
    if tokenizer.vocab_size <= len(SPECIAL_TOKENS):
        raise TokenizerError(f"the {kind} tokenizer learned no tokens from {len(lines)} training lines")
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokeniser written by `save` (vocab.json in a run directory)."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer file not found; train a run first, or point to its run directory")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        kind = payload["kind"]
    except (ValueError, KeyError, TypeError) as err:
        raise TokenizerError(
            f"{path}: not a seqgan tokenizer file ({err}); it should be the vocab.json that a run wrote"
        ) from None
    if payload.get("version") != FORMAT_VERSION:
        raise TokenizerError(f"{path}: tokenizer format version {payload.get('version')}, this seqgan reads {FORMAT_VERSION}")
    if kind not in KINDS:
        raise TokenizerError(f"{path}: unknown tokenizer kind {kind!r}; expected one of {list(KINDS)}")
    try:
        if kind == "bpe":
            from tokenizers import Tokenizer as HFTokenizer

            return BpeTokenizer(HFTokenizer.from_str(json.dumps(payload["hf_tokenizer"])))
        split, drop_spaces = payload.get("split", "whitespace"), bool(payload.get("drop_spaces", False))
        return VocabTokenizer(kind, list(payload["tokens"]), bool(payload["lowercase"]), split, drop_spaces)
    except TokenizerError as err:
        raise TokenizerError(f"{path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any parse failure (HF raises plain Exception) means the same to the user
        raise TokenizerError(f"{path}: damaged {kind} tokenizer file ({err!r}); re-train the run or restore vocab.json") from None


def _load_as(cls: type, path: str | Path):
    tokenizer = load_tokenizer(path)
    if not isinstance(tokenizer, cls):
        raise TokenizerError(f"{path}: holds a {tokenizer.kind} tokenizer, not a {cls.__name__}; use load_tokenizer")
    return tokenizer
