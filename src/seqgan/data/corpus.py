"""Real-text corpora: reading files, encoding them to padded id tensors, held-out splits, masks.

A corpus file holds one sequence a line: plain UTF-8 text (`.txt` and any other suffix), or JSON
Lines (`.jsonl`, one object a line, the text under a configurable field). Blank lines are skipped
and counted. Every problem raises a `CorpusError` with a one-line message naming the file, the
line and what to do; nothing is returned half-read.

Sequence layout (R rows, max_len + 1 columns): the line's ids, then EOS, then PAD up to the end.
Lines longer than `max_len` tokens are truncated to `max_len` (EOS still follows) or dropped, and
`encode_corpus` reports how many: never silently. BOS is not stored; it is the generator's start
token, fed before the first id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqgan.data.tokenizers import EOS, PAD, UNK, Tokenizer

OVERFLOW = ("truncate", "drop")


class CorpusError(ValueError):
    """A corpus file or setting that cannot be used; the message says where and what to do."""


@dataclass(frozen=True)
class Corpus:
    """The non-blank sequences of one file, with the 1-based line number each came from (and, for
    JSON Lines read with label fields, each line's labels as strings, in the fields' order; read
    with a source field, each line's source text)."""

    path: Path
    lines: list[str]
    line_numbers: list[int]
    blank_lines: int
    labels: list[tuple[str, ...]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CorpusError(
            f"{path}:{line}: not valid UTF-8 (byte offset {err.start}: {err.reason}); re-save the file as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8"
        ) from None


def _jsonl_record(path: Path, number: int, raw: str, field: str) -> tuple[str, dict]:
    """A JSON Lines line -> (its text, the whole record)."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{path}:{number}: invalid JSON ({err.msg} at column {err.colno}); write one JSON object a line"
        ) from None
    if not isinstance(record, dict) or field not in record:
        raise CorpusError(
            f"{path}:{number}: no {field!r} field; every line needs {{{field!r}: ...}}, or set the text field to the key that holds the text"
        )
    text = record[field]
    if not isinstance(text, str):
        raise CorpusError(
            f"{path}:{number}: field {field!r} is {type(text).__name__}, not a string; store the text as a JSON string"
        )
    return text, record


def _labels(path: Path, number: int, record: dict, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The label fields of a record as strings; each must be present and a string or an integer."""
    labels = []
    for name in fields:
        if name not in record:
            raise CorpusError(
                f"{path}:{number}: no label field {name!r}; every line needs the label fields {list(fields)} "
                "(condition.label_fields)"
            )
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise CorpusError(
                f"{path}:{number}: label {name!r} is {type(value).__name__} ({json.dumps(value)}); use a string or an integer"
            )
        labels.append(str(value))
    return tuple(labels)


def _source(path: Path, number: int, record: dict, name: str) -> str:
    """The source text of a record: present, a string, not blank."""
    if name not in record:
        raise CorpusError(
            f'{path}:{number}: no source field {name!r}; every line needs {{{name!r}: "..."}} (condition.source_field)'
        )
    value = record[name]
    if not isinstance(value, str):
        raise CorpusError(
            f"{path}:{number}: source {name!r} is {type(value).__name__} ({json.dumps(value)}); store the source as a JSON string"
        )
    if not value.strip():
        raise CorpusError(f"{path}:{number}: empty source {name!r}; every line needs a source sequence of at least one token")
    return value


def corpus_format(path: str | Path) -> str:
    """'jsonl' for `.jsonl` files, 'text' for everything else."""
    return "jsonl" if Path(path).suffix.lower() == ".jsonl" else "text"


def read_corpus(path: str | Path, text_field: str = "text", label_fields: tuple[str, ...] = (), source_field: str = "") -> Corpus:
    """Read the sequences of a `.txt` or `.jsonl` corpus file (see the module docstring), and the
    `label_fields` of each JSON Lines record (a conditional run's labels) or its `source_field`."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: corpus file not found; check the path (relative paths start at the working directory)")
    text = _decode_utf8(path, path.read_bytes())
    jsonl = corpus_format(path) == "jsonl"
    raws = text.split("\n")
    if raws and raws[-1] == "":
        raws.pop()  # the final newline ends the last line; it does not start a blank one
    if label_fields and not jsonl:
        raise CorpusError(f"{path}: labels are read from JSON Lines; give a .jsonl file whose lines hold {list(label_fields)}")
    if source_field and not jsonl:
        raise CorpusError(f"{path}: sources are read from JSON Lines; give a .jsonl file whose lines hold {source_field!r}")
    lines, numbers, labels, sources, blank = [], [], [], [], 0
    for number, raw in enumerate(raws, start=1):
        raw = raw.removesuffix("\r")
        line, record = _jsonl_record(path, number, raw, text_field) if jsonl and raw.strip() else (raw, {})
        if not line.strip():
            blank += 1
            continue
        lines.append(line)
        numbers.append(number)
        if label_fields:
            labels.append(_labels(path, number, record, label_fields))
        if source_field:
            sources.append(_source(path, number, record, source_field))
    if not lines:
        raise CorpusError(f"{path}: empty corpus ({blank} blank lines, no text); give a file with one sequence a line")
    return Corpus(path, lines, numbers, blank, labels, sources)


def encode_corpus(
    lines: list[str], tokenizer: Tokenizer, max_len: int, overflow: str = "truncate"
) -> tuple[torch.Tensor, dict[str, int]]:
    """Encode `lines` to a (R, max_len + 1) LongTensor: ids, EOS, PAD...; plus a report (see `encode_lines`)."""
    tokens, _, report = encode_lines(lines, tokenizer, max_len, overflow)
    return tokens, report


def encode_lines(
    lines: list[str], tokenizer: Tokenizer, max_len: int, overflow: str = "truncate"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """Encode `lines` to a (R, max_len + 1) LongTensor: ids, EOS, PAD...; the index (R,) of the
    line each row came from (what goes with a line, e.g. its condition, follows it); a report.

    overflow='truncate' keeps the first `max_len` tokens of longer lines, 'drop' leaves those lines
    out (then R < len(lines)). Lines that encode to no tokens at all are dropped and counted too.
    The report counts lines read, kept, truncated, dropped (too long), empty, tokens kept, UNK tokens
    among them, and the longest line in tokens.
    """
    if max_len < 1:
        raise CorpusError(f"max_len={max_len}: a sequence needs at least one token before EOS; set max_len >= 1")
    fitted, kept, counts = fit_lengths(lines, tokenizer, max_len, overflow)
    rows = [ids + [EOS] + [PAD] * (max_len - len(ids)) for ids in fitted]
    tokens = torch.tensor(rows, dtype=torch.long).reshape(len(rows), max_len + 1)
    content = (tokens != PAD) & (tokens != EOS)
    report = {
        "lines": len(lines),
        "kept": len(rows),
        "truncated": counts["truncated"],
        "dropped": counts["dropped"],
        "empty": counts["empty"],
        "tokens": int(content.sum()),
        "unk_tokens": int((tokens == UNK).sum()),
        "longest": counts["longest"],
        "max_len": max_len,
    }
    return tokens, kept, report


def fit_lengths(
    texts: list[str], tokenizer: Tokenizer, max_len: int, overflow: str
) -> tuple[list[list[int]], torch.Tensor, dict[str, int]]:
    """Each text's ids, the first `max_len` of a longer one kept (overflow='truncate') or the text
    left out ('drop'); texts with no tokens are left out. Returns the ids of the kept texts, their
    indices (R,) int64, and counts: truncated, dropped, empty, longest (in tokens, before cutting)."""
    if overflow not in OVERFLOW:
        raise CorpusError(f"overflow={overflow!r}: choose 'truncate' (cut long lines) or 'drop' (leave them out)")
    fitted, kept, counts = [], [], {"truncated": 0, "dropped": 0, "empty": 0, "longest": 0}
    for i, text in enumerate(texts):
        ids = tokenizer.encode(text)
        counts["longest"] = max(counts["longest"], len(ids))
        if not ids:
            counts["empty"] += 1
            continue
        if len(ids) > max_len:
            if overflow == "drop":
                counts["dropped"] += 1
                continue
            counts["truncated"] += 1
            ids = ids[:max_len]
        fitted.append(ids)
        kept.append(i)
    return fitted, torch.tensor(kept, dtype=torch.long), counts


HELDOUT_CAP = 1000
"""The most lines a held-out share takes (data.heldout_size 0): BLEU references need no more."""


def heldout_count(n_lines: int, size: int, share: float) -> int:
    """How many of `n_lines` lines to hold out: `size` if given (> 0), else `share` of them
    rounded, at least 1 and at most HELDOUT_CAP."""
    return size if size > 0 else min(HELDOUT_CAP, max(1, round(share * n_lines)))


def split_heldout(n_lines: int, size: int | float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of line indices 0..n_lines-1 into (train, held-out), both sorted.

    `size` is a count (int >= 1) or a fraction of the lines (float in (0, 1), rounded to the
    nearest count, at least 1). Both parts must be non-empty.
    """
    if isinstance(size, float):
        if not 0.0 < size < 1.0:
            raise CorpusError(f"data.heldout_share={size} must lie between 0 and 1; or give a line count in data.heldout_size")
        size = max(1, round(size * n_lines))
    if n_lines < 2:
        raise CorpusError(
            f"data.train has {n_lines} non-blank line: one must be held out and one trained on; give a file of at least 2 lines"
        )
    if not 1 <= size < n_lines:
        raise CorpusError(
            f"data.heldout_size={size} must be between 1 and {n_lines - 1} for the {n_lines} non-blank lines of data.train; "
            f"lower data.heldout_size, or set it to 0 to hold out data.heldout_share of the lines (at most {HELDOUT_CAP:,}), "
            "or add lines"
        )
    order = torch.randperm(n_lines, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[size:]), sorted(order[:size])


def token_mask(tokens: torch.Tensor, eos: int = EOS) -> torch.Tensor:
    """(B, T) bool mask of `tokens` (B, T): True up to and including the first `eos`.

    A row with no EOS (a sample that ran to the maximum length) is True throughout.
    """
    is_eos = (tokens == eos).long()
    after_first_eos = (is_eos.cumsum(dim=1) - is_eos) > 0  # (B, T)
    return ~after_first_eos


def sequence_lengths(tokens: torch.Tensor) -> torch.Tensor:
    """(B,) number of positions of `tokens` (B, T) up to and including the first EOS."""
    return token_mask(tokens).sum(dim=1)
