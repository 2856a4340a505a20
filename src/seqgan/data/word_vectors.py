"""Pre-trained word vectors for a run's vocabulary (`data.word_vectors`), read from a text file.

The format is GloVe's (a token and its numbers on each line, separated by spaces) or word2vec's
text format (the same after a first line "COUNT DIM"). Only the vocabulary's tokens are kept, so
a file of millions of words costs one pass and no memory beyond the vocabulary's rows. Tokens
the file lacks (the special tokens among them) get a vector drawn from N(0, s^2), s the standard
deviation of the vectors found, as ScratchGAN's code does for GloVe (its 0.3836), from their own
seeded generator, so a run's table is the same every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


class WordVectorsError(ValueError):
    """A word-vector file that cannot be used; the message says what to change."""


@dataclass
class WordVectors:
    vectors: torch.Tensor  # (V, P): row i is the vector of token i
    found: int  # tokens of the vocabulary the file had a vector for
    missing: list[str]  # the others, in vocabulary order (special tokens included)


def read_word_vectors(path: str | Path, tokens: Sequence[str], seed: int = 0) -> WordVectors:
    """The vectors of `tokens` (the vocabulary, in id order) from the file at `path`."""
    path = Path(path)
    if not path.is_file():
        raise WordVectorsError(
            f"data.word_vectors={str(path)!r}: no such file (a GloVe-style text file: a token and its numbers per line)"
        )
    index = {t: i for i, t in enumerate(tokens)}
    rows: dict[int, list[float]] = {}
    dim = None
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec's header: COUNT DIM
            if len(parts) < 2:
                continue  # a blank line
            if dim is None:
                dim = len(parts) - 1
            elif len(parts) - 1 != dim:
                raise WordVectorsError(
                    f"{path}:{number}: {len(parts) - 1} numbers where earlier lines have {dim}; every line needs a token and {dim} numbers"
                )
            i = index.get(parts[0])
            if i is not None and i not in rows:
                try:
                    rows[i] = [float(x) for x in parts[1:]]
                except ValueError as e:
                    raise WordVectorsError(f"{path}:{number}: {e}; a line is a token and {dim} numbers") from e
    if not rows:
        raise WordVectorsError(
            f"data.word_vectors={str(path)!r}: none of the {len(tokens)} tokens of the vocabulary has a vector in it "
            "(a file for another language or case? data.lowercase=true matches lower-cased vectors such as GloVe's)"
        )
    found = torch.tensor(list(rows.values()))  # (F, P)
    std = found.std().item() if found.numel() > 1 else 1.0
    rng = torch.Generator().manual_seed(seed)
    vectors = torch.randn(len(tokens), dim, generator=rng) * (std if math.isfinite(std) and std > 0 else 1.0)
    vectors[list(rows)] = found
    missing = [t for i, t in enumerate(tokens) if i not in rows]
    return WordVectors(vectors, len(rows), missing)
