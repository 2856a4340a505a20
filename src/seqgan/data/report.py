"""What happened to a corpus on its way to training: the summary `seqgan train` prints and keeps.

`corpus_summary` gathers the figures of a training file (lines read, kept, blank, truncated,
dropped, held out; the vocabulary and its unknown-token rate; the length of the lines in tokens)
and `corpus_warnings` says in plain words what looks wrong, each time with the setting that
helps. The thresholds are the constants below; each warning names the figure it read.
`summary_lines` writes the block `train` prints (the same dict goes into data_report.json).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TOO_LONG = 0.10
"""Warn when more than this share of the lines are longer than data.max_len."""
KEEP_WHOLE = 0.95
"""The share of lines the suggested data.max_len keeps whole."""
HELDOUT_LARGE = 0.20
"""Warn when the held-out part takes more than this share of the lines."""
DUPLICATES = 0.10
"""Warn when more than this share of the lines repeat an earlier line."""
ONE_TOKEN = 0.05
"""Warn when more than this share of the lines are a single token."""
SPACES = 0.30
"""Char tokenizer: warn when more than this share of the tokens are whitespace (a spaced corpus)."""

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 control characters, tab aside
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def nearest_rank(values: Sequence[int], q: float) -> int:
    """The q-quantile of `values` by nearest rank: the smallest value with at least q of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class LineProfile:
    """What a look at the raw lines finds (before any tokenizer)."""

    control_lines: int
    ansi_lines: int
    first_control_line: int  # 1-based line number in the file; 0 when none
    duplicate_lines: int  # lines equal to an earlier line
    most_repeated: str


def profile_lines(lines: Sequence[str], line_numbers: Sequence[int]) -> LineProfile:
    control = [n for line, n in zip(lines, line_numbers, strict=True) if CONTROL.search(line)]
    counts = Counter(lines)
    repeated, times = counts.most_common(1)[0] if counts else ("", 0)
    return LineProfile(
        control_lines=len(control),
        ansi_lines=sum(1 for line in lines if ANSI.search(line)),
        first_control_line=control[0] if control else 0,
        duplicate_lines=len(lines) - len(counts),
        most_repeated=repeated if times > 1 else "",
    )


def length_profile(lengths: Sequence[int]) -> dict[str, int]:
    """Tokens a line (before cutting): median, 95th percentile, max, and lines of a single token."""
    if not lengths:
        return {"median": 0, "p95": 0, "max": 0, "one_token": 0}
    return {
        "median": nearest_rank(lengths, 0.5),
        "p95": nearest_rank(lengths, KEEP_WHOLE),
        "max": max(lengths),
        "one_token": sum(1 for n in lengths if n == 1),
    }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def corpus_warnings(s: dict[str, Any]) -> list[str]:
    """Plain-words warnings about a corpus summary (`corpus_summary`), each with the setting that helps."""
    out = []
    lines, length = s["lines"], s["length"]
    too_long = s["truncated"] + s["dropped_too_long"]
    if _share(too_long, lines) > TOO_LONG:
        done = "truncated" if s["overflow"] == "truncate" else "dropped"
        out.append(
            f"{too_long:,} of the {lines:,} lines ({_pct(_share(too_long, lines))}) are longer than data.max_len="
            f"{s['max_len']} tokens and were {done}; data.max_len={length['p95']} keeps 95% of them whole"
        )
    if s["heldout_share"] > HELDOUT_LARGE:
        out.append(
            f"data.heldout_size={s['heldout']} holds out {_pct(s['heldout_share'])} of the lines, which are never trained "
            "on; lower it, or set data.heldout_size=0 (data.heldout_share of the lines, 5% by default, at most 1,000)"
        )
    if s["control_lines"]:
        what = "ANSI escape codes (terminal colours)" if s["ansi_lines"] else "control characters"
        out.append(
            f"{s['control_lines']:,} of the {lines:,} lines hold {what}, first at line {s['first_control_line']}; they are "
            r"learned as text: strip them from the file (e.g. sed 's/\x1b\[[0-9;]*m//g')"
        )
    if _share(s["duplicate_lines"], lines) > DUPLICATES:
        out.append(
            f"{s['duplicate_lines']:,} of the {lines:,} lines ({_pct(_share(s['duplicate_lines'], lines))}) repeat an "
            f"earlier line (most often {s['most_repeated'][:40]!r}); separators and boilerplate are learned as text: "
            "remove them or deduplicate"
        )
    if _share(length["one_token"], s["train_lines"]) > ONE_TOKEN:
        out.append(
            f"{length['one_token']:,} of the {s['train_lines']:,} training lines ({_pct(_share(length['one_token'], s['train_lines']))}) "
            "are a single token; if they are separators or headings, remove them from the file"
        )
    if s.get("space_share", 0.0) > SPACES:
        out.append(
            f"{_pct(s['space_share'])} of the character tokens are whitespace (characters separated by spaces?); "
            "data.drop_spaces=true leaves whitespace out"
        )
    return out


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The block `train` prints: four lines of figures, then one line a warning."""
    read, lines = s["lines_read"], s["lines"]
    unk = ", ".join(f"{name} {_pct(rate)}" for name, rate in s["unk_rate"].items())
    length = s["length"]
    return [
        f"data: {s['file']}: {read:,} lines read; {s['kept']:,} kept ({_pct(_share(s['kept'], read))}), {s['blank']:,} blank "
        f"({_pct(_share(s['blank'], read))}), {s['truncated']:,} truncated ({_pct(_share(s['truncated'], read))}), "
        f"{s['dropped']:,} dropped ({_pct(_share(s['dropped'], read))})",
        f"  held out: {s['heldout']:,} lines ({_pct(s['heldout_share'])} of {lines:,}); test set: {s['test']}",
        f"  vocabulary: {s['vocab_size']:,} tokens ({s['tokenizer']}); unknown tokens: {unk}",
        f"  tokens a line: median {length['median']}, 95th percentile {length['p95']}, max {length['max']} "
        f"(data.max_len {s['max_len']})",
        *_word_vector_lines(s.get("word_vectors")),
        *(f"warning: {w}" for w in s["warnings"]),
    ]


def _word_vector_lines(v: dict[str, Any] | None) -> list[str]:
    """One line on data.word_vectors: how many of the vocabulary's tokens the file had."""
    if v is None:
        return []
    missing = ", ".join(v["missing"][:8])
    return [
        f"  word vectors: {v['file']}: {v['dim']} numbers a token, {v['found']:,} of {v['tokens']:,} tokens found "
        f"({_pct(_share(v['found'], v['tokens']))}); random for the rest: {missing}{', ...' if len(v['missing']) > 8 else ''}"
    ]
