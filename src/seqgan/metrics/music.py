"""Validity of folk tunes in ABC notation, one tune a line as `scripts/prepare_folk_tunes.py` writes
them: a compact header, then the body with no spaces, e.g.

    M:3/4 L:1/8 K:F CCC|F2ACCC|F2A4

Two measures of a list of such lines (generated samples, or real tunes as the ceiling):

- `bar_share`: the mean over tunes of the share of bars whose duration matches the metre. A small
  tokenizer reads the ABC subset of the Essen folk songs (the corpus the recipe reads): notes
  (accidentals `^ = _`, letters A-G a-g, octave marks `, '`), rests `z`, lengths (`2`, `3/2`, `/2`,
  `/`), ties `-` and bar lines `|` (also `||`, `|:`, `:|`, `|]`). A bar's duration is the sum of its
  lengths times the unit length L; it matches when it equals the metre's M = n/d of a whole note.
  The first and last bars may be shorter (a pick-up and the bar that completes it). A bar holding
  anything else (chords, tuplets, grace notes, inline fields) does not match; so does every bar of
  a tune whose header cannot be read (it scores 0). Needs nothing but the standard library.
- `abc_parse_share`: the share of tunes that music21 (an optional dependency: `pip install
  music21`) parses as ABC into a score with at least one note. music21 is imported inside it only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

HEADER = re.compile(r"^M:(\d+)/(\d+) L:(\d+)/(\d+) K:(\S+) (.*)$")
NOTE = re.compile(r"[_=^]*[A-Ga-g][,']*|z")
LENGTH = re.compile(r"\d*(?:/(?:[1-9]\d*)?)?")  # 2, 3/2, /2, /, or nothing (one unit); never /0
BAR_LINE = re.compile(r":*\|+[:\]]*")


@dataclass(frozen=True)
class Tune:
    metre: Fraction  # duration of a bar, in whole notes (M: 3/4 -> 3/4)
    unit: Fraction  # L:, the length of a note written without a number
    key: str
    body: str


def read_tune(line: str) -> Tune | None:
    """The header fields and body of one compact tune line; None if the line has no readable header."""
    match = HEADER.match(line.strip())
    if match is None:
        return None
    m_num, m_den, l_num, l_den, key, body = match.groups()
    if 0 in (int(m_num), int(m_den), int(l_num), int(l_den)):
        return None
    return Tune(Fraction(int(m_num), int(m_den)), Fraction(int(l_num), int(l_den)), key, body)


def note_length(text: str) -> Fraction:
    """A length suffix in units of L: '' -> 1, '2' -> 2, '3/2' -> 3/2, '/2' and '/' -> 1/2 (the tokenizer
    does not read '//', so a bar holding it does not match)."""
    num, _, den = text.partition("/")
    if "/" not in text:
        return Fraction(int(num) if num else 1)
    return Fraction(int(num) if num else 1, int(den) if den else 2)


def bar_duration(bar: str) -> Fraction | None:
    """The summed lengths (in units of L) of the notes and rests of one bar; None if the bar holds
    anything the tokenizer does not read."""
    total, i = Fraction(0), 0
    while i < len(bar):
        if bar[i] in " -":  # beams and ties take no time
            i += 1
            continue
        note = NOTE.match(bar, i)
        if note is None:
            return None
        length = LENGTH.match(bar, note.end())  # always matches, perhaps the empty string
        total += note_length(length.group())
        i = length.end()
    return total


def bars(body: str) -> list[str]:
    """The bars of a body, split at bar lines; the empty bars before an opening and after a closing
    bar line are dropped."""
    parts = BAR_LINE.split(body)
    start = 1 if parts and not parts[0].strip() else 0
    end = -1 if len(parts) > start and not parts[-1].strip() else len(parts)
    return parts[start:end]


def bar_checks(line: str) -> list[bool]:
    """Per bar of one tune line, whether its duration matches the metre (a first or last bar may be
    shorter); [False] for a line whose header cannot be read, or that has no bar."""
    tune = read_tune(line)
    if tune is None:
        return [False]
    parts = bars(tune.body)
    if not parts:
        return [False]
    full = tune.metre / tune.unit  # a bar in units of L
    checks = []
    for i, bar in enumerate(parts):
        duration = bar_duration(bar)
        edge = i in (0, len(parts) - 1)
        checks.append(duration is not None and (duration == full or (edge and 0 < duration < full)))
    return checks


def bar_share(lines: Sequence[str]) -> float:
    """Mean over lines of the share of their bars that match the metre (`bar_checks`); 0 for no lines."""
    shares = [sum(c) / len(c) for c in map(bar_checks, lines)]
    return sum(shares) / len(shares) if shares else 0.0


def whole_tune_share(lines: Sequence[str]) -> float:
    """The share of lines all of whose bars match the metre; 0 for no lines."""
    return sum(all(bar_checks(line)) for line in lines) / len(lines) if lines else 0.0


def to_abc(line: str) -> str:
    """One compact tune line as an ABC file text (X:, M:, L:, K: header lines, then the body); a line
    with no readable header is given as a body under the header X:1 only."""
    tune = read_tune(line)
    if tune is None:
        return f"X:1\n{line}\n"
    metre = HEADER.match(line.strip()).groups()
    return f"X:1\nM:{metre[0]}/{metre[1]}\nL:{metre[2]}/{metre[3]}\nK:{tune.key}\n{tune.body}\n"


def parses_as_abc(line: str) -> bool:
    """True when music21 reads the tune line as ABC into a score holding at least one note."""
    try:
        import music21
    except ImportError:
        raise ImportError("abc_parse_share needs music21: pip install music21 (or pip install -e '.[music]')") from None
    try:
        score = music21.converter.parse(to_abc(line), format="abc")
    except Exception:  # music21 raises many kinds (ABCHandlerException, IndexError, ...) on bad ABC
        return False
    return len(score.recurse().notes) > 0


def abc_parse_share(lines: Sequence[str]) -> float:
    """The share of lines that music21 parses as ABC (`parses_as_abc`); 0 for no lines."""
    return sum(map(parses_as_abc, lines)) / len(lines) if lines else 0.0
