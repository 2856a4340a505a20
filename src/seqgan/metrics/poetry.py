"""The form of classical Chinese quatrains (jueju): four clauses of five (or seven) characters,
the first and third ending in a full-width comma, the second and fourth in a full stop, and no
punctuation inside a clause. Every one of the 16,394 poems of ../shared/data/poems/shi.txt has
exactly this form, so the share of samples that keep it measures whether G learned the structure.
"""

from __future__ import annotations

from collections.abc import Sequence

PUNCTUATION = frozenset("，。？！；：、,.?!;:")
CLAUSE_ENDS = ("，", "。", "，", "。")


def is_quatrain(tokens: Sequence[str], clause_len: int = 5) -> bool:
    """True when `tokens` (one character a token) are 4 clauses of `clause_len` characters, each
    followed by its mark (，。，。), with no punctuation anywhere else."""
    width = clause_len + 1
    if len(tokens) != len(CLAUSE_ENDS) * width:
        return False
    for i, token in enumerate(tokens):
        end = i % width == clause_len
        if (token != CLAUSE_ENDS[i // width]) if end else (token in PUNCTUATION):
            return False
    return True


def quatrain_share(samples: Sequence[Sequence[str]], clause_len: int = 5) -> float:
    """The fraction of samples (token lists) in quatrain form (`is_quatrain`); 0 for no samples."""
    return sum(is_quatrain(s, clause_len) for s in samples) / len(samples) if samples else 0.0
